"""Sliders: one slider per latent dimension; the digit is redrawn in the browser while you drag."""

import streamlit as st

from ui import state
from ui.decoder_component import live_sliders
from vae.dims import dim_ranges, dim_scores, include, nearest, rank_dims, start_code, traversal_codes
from vae.latent import decode
from ui.layout import ensure_frame
from vae.images import image_grid

SHOWN = 8  # sliders shown by default: the most informative dimensions
STEPS = 9  # images per traversal strip
RESETS = "sliders_resets"  # session_state: how often Reset was pressed (a new value restarts the sliders)

ensure_frame()
st.title(":material/tune: Sliders")
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

picks = [i for i in state.picks() if 0 <= i < len(codes)]
sources = (["picked"] if picks else []) + ["digit", "class", "origin", "prior"]
starts = {"picked": "map pick", "digit": "test digit", "class": "class mean", "origin": "origin",
          "prior": "prior sample"}
c1, c2, c3 = st.columns([4, 2, 1], vertical_alignment="bottom")
source = c1.radio("Start from", sources, format_func=starts.get, horizontal=True, key="sliders_start",
                  help="Where the sliders start. A map pick is a digit picked on the Latent map; a class mean "
                       "is the average code of that class's test digits; a prior sample is a code drawn from N(0, I).")
try:
    if source == "picked":
        index = c2.selectbox("Picked digit", picks, key="sliders_pick",
                             format_func=lambda i: f"test #{i} (a {names[labels[i]]})")
        z0 = start_code("digit", codes, index=index)
    elif source == "digit":
        index = c2.number_input(f"Test digit (0 to {len(codes) - 1})", 0, len(codes) - 1, 0, key="sliders_index")
        z0 = start_code("digit", codes, index=index)
    elif source == "class":
        digit = c2.selectbox("Class", range(len(names)), key="sliders_class", format_func=names.__getitem__)
        z0 = start_code("class", codes, labels, digit=digit)
    elif source == "prior":
        z0 = start_code("prior", codes, seed=c2.number_input("Seed", 0, 10_000, 0, key="sliders_seed"))
    else:
        z0 = start_code("origin", codes)
except ValueError as e:
    st.warning(str(e))
    st.stop()
c3.button("Reset", key="sliders_reset", icon=":material/restart_alt:", width="stretch",
          help="Put every slider back at the start.",
          on_click=lambda: st.session_state.update({RESETS: st.session_state.get(RESETS, 0) + 1}))

if d > SHOWN:
    dims = st.multiselect(
        f"Dimensions with sliders (this model has {d}; the {SHOWN} most informative are chosen first)",
        ranked, default=ranked[:SHOWN], format_func=score_label.get, key=f"sliders_dims_{a.fingerprint[:8]}",
        help="Ranked by KL for a VAE (nats of information the code carries along that dimension) and by the "
             "variance of the test codes for an AE. Dimensions without a slider keep their starting value.")
    dims = sorted(dims, key=ranked.index)
else:
    dims = ranked
if not dims:
    st.info("Choose at least one dimension to get a slider.")
    st.stop()

ranges = include(dim_ranges(kind, codes), z0)
left, right = st.columns([5, 2], gap="large")
with left:
    live = live_sliders(a, z0, dims, ranges, [score_label[i] for i in dims], st.session_state.get(RESETS, 0))
    st.caption(f"The decoder's weights travel once to your browser ({live.payload_bytes / 1e6:.2f} MB, float16) "
               f"and it redraws the digit on every movement. Slider ranges: "
               + ("±3, the bulk of the prior N(0, I)." if a.config.has_prior else
                  "the span of the test codes along each dimension (an AE has no prior)."))
with right:
    z = live.z
    j = nearest(codes, z)
    st.markdown("**Closest real digit**" + (" to where you released the sliders" if live.moved else ""))
    st.image(image_grid(data.x_test[j:j + 1].numpy() / 255.0, cols=1, scale=4), width=120)
    st.caption(f"Test #{j}, a {names[labels[j]]}: the test digit whose code is nearest (Euclidean distance in "
               "latent space).")
    st.button("Send to Interpolate", key="sliders_send", icon=":material/timeline:", help="Adds this test digit to the picks that "
              "Interpolate (and the map) use.",
              disabled=j in picks, on_click=lambda: state.set_picks(picks + [j]))
    if picks:
        st.page_link("pages/interpolate.py", label=f"Interpolate between the picks ({len(picks)})", icon=":material/timeline:")

st.subheader("What each dimension does on its own")
st.caption(f"Each row keeps the code where the sliders were last released and sweeps one dimension over its "
           f"slider range, left to right, in {STEPS} even steps.")
strips = decode(a.model, traversal_codes(z, dims, ranges, STEPS)).reshape(len(dims), STEPS, 28, 28)
for i, strip in zip(dims, strips):
    name, img = st.columns([1, 6], vertical_alignment="center")
    name.markdown(f"**z{i}**  \n{ranges[i, 0]:.3g} → {ranges[i, 1]:.3g}")
    img.image(image_grid(strip, cols=STEPS, scale=2), width="content")
