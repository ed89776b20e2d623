"""Interpolate: walk from one digit's code to another's, decode every step, and score how digit-like it is."""

import numpy as np
import streamlit as st

from ui import drawing, explore, hover_card, links, map_canvas, state
from ui.figures import DIGIT_COLORS, gif_bytes
from vae.compare import representative
from ui.layout import ensure_frame
from ui.text import plain
from vae.images import image_grid, png_bytes

MODES = ["class", "index", "map"]  # how the two digits are picked ("map": two of the picks)
ENDS = ["class", "index"]  # how the test digit at the end of a walk from a sent code is picked
PATHS = ["linear", "spherical"]

ensure_frame()
st.title(":material/timeline: Interpolate")
link = links.Link("interpolate")
st.markdown(
    "Take the codes of two digits and walk between them in latent space: every step is decoded back into "
    "an image. **Linear** goes in a straight line; **spherical** follows an arc whose steps keep a length "
    "between the two codes' lengths, where a straight line's middle dips toward the origin (in many dimensions "
    "almost every sample of a bell-curve prior has about the same length; the arc does not follow the data, "
    "and for an AE, which has no prior, it means nothing special). Where the path crosses a *hole* (a region no training digit "
    "was mapped to), the in-between images stop looking like digits, and the classifier's score drops."
)

a = state.require_active()
data = state.require_test_data(a)
labels = data.y_test.numpy()
names = data.class_names
z = state.active_codes(a)
n = len(labels)

link.picks(n)
picks = [i for i in state.picks() if 0 <= i < n]
sent = drawing.sent_for(a)  # a code sent here (a drawing, a map point): (z, label), or None
modes = MODES + (["sent"] if sent else [])
c1, c2, c3 = st.columns([3, 2, 2])
source = c1.radio("Pick the two digits", modes, horizontal=True,
                  key=link.field("mode", "interp_source", links.choice(modes), "class", modes),
                  format_func={"class": "by class", "index": "by test index", "map": "from the picks",
                               "sent": "from " + plain(sent[1]) if sent else ""}.get,
                  help="By class: the test digit closest to that class's mean code. From the picks: two of the "
                       "digits picked on the Latent map (or sent from Sliders)."
                       + (" From the sent code: a walk from the code sent from another page to a test digit."
                          if sent else ""))
method = c2.radio("Path", PATHS, horizontal=True,
                  key=link.field("path", "interp_method", links.choice(PATHS), "linear"))
steps = c3.slider("Steps", 3, 30, key=link.field("steps", "interp_steps", links.integer(3, 30), 10))
link.publish({"mode": source, "steps": steps, "path": method, "picks": picks if source == "map" else None})

d1, d2 = st.columns(2)
z0 = None  # the start's code, where it is not a test digit's (a sent code)
if source == "sent":
    z0, i0 = sent[0], None
    d1.markdown(f"**From {plain(sent[1])}**")
    d1.caption("The code sent from another page; the walk ends at a test digit.")
    end = d2.radio("To a test digit", ENDS, horizontal=True, format_func={"class": "by class",
                   "index": "by test index"}.get, key=link.field("end", "interp_sent_end", links.choice(ENDS), "class"))
    if end == "class":
        classes = sorted(set(labels.tolist()))
        c_to = d2.selectbox("To class", classes, format_func=names.__getitem__,
                            key=link.field("to", "interp_sent_class", links.choice(classes), classes[0], classes))
        i1, ends = representative(z, labels, c_to), (None, c_to)
    else:
        i1 = int(d2.number_input(f"To test digit # (0 to {n - 1})", 0, n - 1,
                                 key=link.field("to", "interp_sent_index", links.integer(0, n - 1), min(2, n - 1))))
        ends = None, i1
    link.publish({"end": end})
elif source == "class":
    classes = sorted(set(labels.tolist()))
    ok = links.choice(classes)
    c_from = d1.selectbox("From class", classes, format_func=names.__getitem__,
                          key=link.field("from", "interp_from_class", ok, classes[0], classes))
    c_to = d2.selectbox("To class", classes, format_func=names.__getitem__,
                        key=link.field("to", "interp_to_class", ok, classes[min(1, len(classes) - 1)], classes))
    ends = c_from, c_to
    i0, i1 = representative(z, labels, c_from), representative(z, labels, c_to)
elif source == "index":
    ok = links.integer(0, n - 1)
    i0 = int(d1.number_input(f"From test digit # (0 to {n - 1})", 0, n - 1,
                             key=link.field("from", "interp_from_index", ok, min(3, n - 1))))
    i1 = int(d2.number_input(f"To test digit # (0 to {n - 1})", 0, n - 1,
                             key=link.field("to", "interp_to_index", ok, min(2, n - 1))))
    ends = i0, i1
else:
    if len(picks) < 2:
        st.info("Pick at least two digits on the **Latent map** first (click or lasso). Until then, pick by "
                "class or by test index.", icon=":material/scatter_plot:")
        st.page_link("pages/map.py", label="Go to the Latent map", icon=":material/scatter_plot:")
        st.stop()
    far = explore.farthest_pair(z, picks)  # the two most different picks, proposed
    ok, which = links.choice(picks), (lambda i: f"test #{i} (a {names[labels[i]]})")
    i0 = d1.selectbox("From pick", picks, format_func=which,
                      key=link.field("from", "interp_from_pick", ok, far[0], picks))
    i1 = d2.selectbox("To pick", picks, format_func=which, key=link.field("to", "interp_to_pick", ok, far[1], picks))
    ends = i0, i1
    st.caption(f"{len(picks)} digits are picked; proposed are the two whose codes are farthest apart "
               f"(test #{far[0]} and #{far[1]}). Choose any two.")
link.publish({"from": ends[0], "to": ends[1]} | ({} if source == "sent" else {"end": None}))

if i0 is not None and i0 == i1:
    st.info("Start and end are the same digit, so every step shows it; pick two different digits.")

clf, no_scores = state.scorer(a.dataset)
try:
    with st.spinner("Decoding the path…"):
        report = (explore.path(a, clf, i0, i1, steps, method) if z0 is None else
                  drawing.sent_path(a, clf, z0, i1, steps, method))
        p, y = explore.plane(a)
except ValueError as e:  # e.g. a diverged model whose codes are not finite
    st.error(f"This model's latent space cannot be drawn: {plain(e)}")
    st.stop()

start_name = plain(sent[1]) if z0 is not None else f"test #{i0}"
start_file = "sent" if z0 is not None else str(i0)
st.subheader(f"From {start_name}" + ("" if z0 is not None else f" (a {names[labels[i0]]})")
             + f" to test #{i1} (a {names[labels[i1]]})")
strip = image_grid(report.images, cols=steps, scale=3)
st.image(strip, width="stretch" if steps > 12 else "content",
         caption=f"{steps} steps, {method}, from {start_name} (left) to test #{i1} (right)")
if report.scores is None:
    st.caption(no_scores)
else:
    k = int((report.scores >= report.threshold).sum())
    w = report.weakest
    st.plotly_chart(explore.score_chart(report.scores, report.threshold), key="interp_scores",
                    config={"displayModeBar": False})
    st.caption(f"{k} of {steps} steps look like a confident digit (score ≥ {report.threshold:g}, the dashed line); "
               f"the weakest is step {w + 1}, at {report.scores[w]:.2f}. The score is a digit classifier's top class "
               "probability: near 1 for a clear digit, near 0.1 for a blur.")

e1, e2, _ = st.columns([1, 1, 3])
e1.download_button("Strip as PNG", png_bytes(strip), f"interpolation-{start_file}-{i1}-{method}.png", "image/png",
                   key="interp_png", on_click="ignore", icon=":material/image:")
e2.download_button("Animated GIF", gif_bytes(explore.frames(report.images)),
                   f"interpolation-{start_file}-{i1}-{method}.gif",
                   "image/gif", key="interp_gif", on_click="ignore", icon=":material/movie:")

st.subheader("The path over the latent map")
st.caption(("The model's own 2-D latent plane" if p.name == "native" else
             f"A {a.config.latent_dim}-d space seen through PCA of the test codes (the path is projected the same "
            "way, so it can look shorter or bend)") + f": each of the {len(y):,} dots is a test image, coloured by its "
           "label; hover one to see it" +
           ("." if report.scores is None else
            ". The path's steps are green where the decoded image looks like a digit and red where it does not; "
            "hover a step for its score."))
m1, m2 = st.columns([3, 2])
with m1:
    map_canvas.map_chart("interp_map", f"{a.fingerprint}-{p.name}", y, labels, names, DIGIT_COLORS,
                         explore.axis_names(p), filename=f"interpolation-map-{a.entry.id}-{start_file}-{i1}", height=480,
                         path=explore.walk(p.transform(report.z), report.scores, report.threshold), pickable=False,
                         equal=True)
    hover_card.hover_digits(a.dataset, [hover_card.decode_spec(a, "interp_map", p.name, z, y, projection=p,
                                                               map_id=f"{a.fingerprint}-{p.name}")])
if z0 is None:
    originals, _ = explore.reconstructions(a, [i0, i1])
    m2.image(image_grid(originals, cols=2, scale=4), caption="start and end: the two test images")
else:
    originals, _ = explore.reconstructions(a, [i1])
    m2.image(image_grid(np.stack([drawing.decoded(a, z0), originals[0]]), cols=2, scale=4),
             caption="start and end: the sent code as the decoder draws it, and the test image")
m2.markdown("A straight line between two clusters often crosses empty space. In a plain autoencoder that "
            "space is undefined, so the strip goes blurry mid-way; a VAE's prior keeps it filled.")
