"""Sliders: one slider per latent dimension; the digit is redrawn in the browser while you drag."""

import streamlit as st

from ui import drawing, links, state
from ui.decoder_component import live_sliders, server_sliders
from vae.dims import dim_ranges, dim_scores, include, nearest, rank_dims, start_code, traversal_codes
from vae.latent import decode
from ui.layout import ensure_frame
from ui.text import plain
from vae.images import image_grid

SHOWN = 8  # sliders shown by default: the most informative dimensions
STEPS = 9  # images per traversal strip
RESETS = "sliders_resets"  # session_state: how often Reset was pressed (a new value restarts the sliders)
CODE = "sliders_code"  # session_state: (start, z) a link's slider values for that start, shown first

ensure_frame()
st.title(":material/tune: Sliders")
link = links.Link("sliders")
st.markdown(
    "A digit's **latent code** is a short list of numbers; the decoder turns any such list back into an image. "
    "Each slider below is one of those numbers: drag it and watch the digit change as you move. Some dimensions "
    "change the slant, some the thickness, some the digit itself. In a VAE, dimensions with a KL near zero are "
    "ones the model learned to ignore, so moving them changes nothing."
)

a = state.require_active()
data = state.require_test_data(a)
labels = data.y_test.numpy()
names = data.class_names
codes, logvars = state.codes(a.fingerprint, a.dataset, a.model)
d, kind = a.config.latent_dim, a.config.kind

scores = dim_scores(kind, codes, logvars, kl_per_dim=a.meta.get("metrics", {}).get("kl_per_dim"))
ranked = rank_dims(scores)
score_label = {i: f"z{i} · " + (f"{scores[i]:.2f} nats" if a.config.has_prior else f"var {scores[i]:.3g}")
               for i in range(d)}

n = len(codes)
link.picks(n)
picks = [i for i in state.picks() if 0 <= i < n]
sent = drawing.sent_for(a)  # a code sent here (a drawing, a map point): (z, label), or None
sources = (["sent"] if sent else []) + (["picked"] if picks else []) + ["digit", "class", "origin", "prior"]
starts = {"sent": plain(sent[1]) if sent else "", "picked": "map pick", "digit": "test digit", "class": "class mean",
          "origin": "origin", "prior": "prior sample"}
c1, c2, c3 = st.columns([4, 2, 1], vertical_alignment="bottom")
source = c1.radio("Start from", sources, format_func=starts.get, horizontal=True,
                  key=link.field("start", "sliders_start", links.choice(sources), sources[0], sources),
                  help="Where the sliders start. A map pick is a digit picked on the Latent map; a class mean "
                       "is the average code of that class's test digits; a prior sample is a code drawn from N(0, I)."
                       + (" The first option is the code sent from another page." if sent else ""))
index = digit = seed = None
try:
    if source == "sent":
        z0 = sent[0]
        c2.caption(f"The code of {plain(sent[1])}, sent from another page.")
    elif source == "picked":
        index = c2.selectbox("Picked digit", picks, format_func=lambda i: f"test #{i} (a {names[labels[i]]})",
                             key=link.field("digit", "sliders_pick", links.choice(picks), picks[0], picks))
        z0 = start_code("digit", codes, index=index)
    elif source == "digit":
        index = c2.number_input(f"Test digit (0 to {n - 1})", 0, n - 1,
                                key=link.field("digit", "sliders_index", links.integer(0, n - 1), 0))
        z0 = start_code("digit", codes, index=index)
    elif source == "class":
        digit = c2.selectbox("Class", range(len(names)), format_func=names.__getitem__,
                             key=link.field("class", "sliders_class", links.integer(0, len(names) - 1), 0))
        z0 = start_code("class", codes, labels, digit=digit)
    elif source == "prior":
        seed = c2.number_input("Seed", 0, 10_000, key=link.field("seed", "sliders_seed", links.integer(0, 10_000), 0))
        z0 = start_code("prior", codes, seed=seed)
    else:
        z0 = start_code("origin", codes)
except ValueError as e:
    st.warning(str(e))
    st.stop()
link.publish({"start": source, "digit": index, "class": digit, "seed": seed,
              "picks": picks if source == "picked" else None})
c3.button("Reset", key="sliders_reset", icon=":material/restart_alt:", width="stretch",
          help="Put every slider back at the start.",
          on_click=lambda: st.session_state.update({RESETS: st.session_state.get(RESETS, 0) + 1, CODE: None}))

if d > SHOWN:
    dims = st.multiselect(
        f"Dimensions with sliders (this model has {d}; the {SHOWN} most informative are chosen first)",
        ranked, format_func=score_label.get,
        key=link.field("dims", f"sliders_dims_{a.fingerprint[:8]}", lambda t: links.parse_ints(t, 0, d - 1, d),
                       ranked[:SHOWN]),
        help="Ranked by KL for a VAE (nats of information the code carries along that dimension) and by the "
             "variance of the test codes for an AE. Dimensions without a slider keep their starting value.")
    dims = sorted(dims, key=ranked.index)
else:
    dims = ranked
if not dims:
    st.info("Choose at least one dimension to get a slider.")
    st.stop()

ranges = include(dim_ranges(kind, codes), z0)
# A link's slider values belong to its start: shown first, until the start changes or Reset is pressed.
start = (a.fingerprint, source, index, digit, seed, tuple(z0.tolist()) if source == "sent" else None)
if (z_link := link.value("z", lambda t: links.parse_floats(t, ranges.tolist()))) is not None:
    st.session_state[CODE] = (start, z_link)
held = st.session_state.get(CODE)  # None after Reset
if held is not None and held[0] != start:  # another start now: the sliders start there
    st.session_state.pop(CODE)
    held = None
left, right = st.columns([5, 2], gap="large")
with left:
    in_browser = getattr(a.model, "runs_in_browser", True)  # False for an imported ONNX graph
    live = (live_sliders if in_browser else server_sliders)(
        a, z0, dims, ranges, [score_label[i] for i in dims], st.session_state.get(RESETS, 0),
        code=None if held is None else held[1])
    st.caption((f"The decoder's weights travel once to your browser ({live.payload_bytes / 1e6:.2f} MB, float16) "
                "and it redraws the digit on every movement. " if in_browser else
                "Decoded on the server, when a slider is released: an imported ONNX model's decoder cannot run in "
                "your browser. ") + "Slider ranges: "
               + ("±3, the bulk of the prior N(0, I)." if a.config.has_prior else
                  "the span of the test codes along each dimension (an AE has no prior)."))
with right:
    z = live.z
    j = nearest(codes, z)
    st.markdown("**Closest real digit**" + (" to where you released the sliders" if live.moved else ""))
    st.image(image_grid(data.x_test[j:j + 1].numpy() / 255.0, cols=1, scale=4), width=120)
    st.caption(f"Test #{j}, a {names[labels[j]]}: the test digit whose code is nearest (Euclidean distance in "
               "latent space).")
    # Where the sliders started, as a test digit: the start itself, or the one nearest to it.
    i0 = index if index is not None else nearest(codes, z0)
    origin = f"{plain(sent[1])}'s code" if source == "sent" else f"test #{i0}"
    if st.button("Send to Interpolate", key="sliders_send", icon=":material/timeline:",
                 help=f"Walk on Interpolate from {origin}, where the sliders started, to this digit; it also joins "
                      "the picks that Interpolate and the map use."):
        state.set_picks(picks + [j] if j not in picks else picks)
        links.go("pages/interpolate.py", {"mode": "sent", "end": "index", "to": j} if source == "sent" else
                 {"mode": "index", "from": i0, "to": j})
    if len(picks) >= 2:
        st.page_link("pages/interpolate.py", label=f"Interpolate the {len(picks)} picks", icon=":material/timeline:",
                     query_params=links.query("interpolate", {"mode": "map", "picks": picks}))
link.publish({"dims": dims if d > SHOWN else None,
              "z": [float(v) for v in z] if live.moved else None})

st.subheader("What each dimension does on its own")
st.caption(f"Each row keeps the code where the sliders were last released and sweeps one dimension over its "
           f"slider range, left to right, in {STEPS} even steps.")
strips = decode(a.model, traversal_codes(z, dims, ranges, STEPS)).reshape(len(dims), STEPS, 28, 28)
for i, strip in zip(dims, strips):
    name, img = st.columns([1, 6], vertical_alignment="center")
    name.markdown(f"**z{i}**  \n{ranges[i, 0]:.3g} → {ranges[i, 1]:.3g}")
    img.image(image_grid(strip, cols=STEPS, scale=2), width="content")
