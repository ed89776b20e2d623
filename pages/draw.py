"""Draw a digit: the pad, what the active model makes of the drawing, its nearest test digits and its place
on a map; send its code to Sliders or Interpolate."""

import streamlit as st

from ui import drawing, hover_card, links, map_canvas, map_view, state
from ui.figures import DIGIT_COLORS
from ui.layout import ensure_frame
from ui.text import plain
from vae.images import image_grid
from vae.maps.projection import METHOD_LABELS

ensure_frame()
st.title(":material/draw: Draw a digit")
link = links.Link("draw")
st.markdown(
    "Draw a digit and see what the model makes of it. Your drawing is prepared the way the MNIST digits were: "
    "its ink is scaled into a 20 × 20 box, then centred by its centre of mass in a 28 × 28 square. The encoder "
    "turns it into a **code**, the decoder draws that code back, and the code finds its place among the "
    "10,000 test digits: on the map below, and among its nearest neighbours in latent space.")

a = state.require_active()
data = state.require_test_data(a)
labels, names = data.y_test.numpy(), data.class_names
codes = state.active_codes(a)
clf, no_scores = state.scorer(a.dataset)

left, right = st.columns([2, 3], gap="large")
with left:
    x, problem = drawing.read_pad("draw_pad")
    st.caption("Draw one digit, large, with the mouse, a pen or a finger. It is read each time you lift the pen; "
               "**Undo** takes back the last stroke, **Clear** wipes the pad.")
reading = None
with right:
    if problem:
        st.warning(problem, icon=":material/gesture:")
    elif x is None:
        st.info("Draw a digit on the pad: its reconstruction, the classifier's verdict, its code, its nearest test "
                "digits and its place on the map show here.", icon=":material/draw:")
    else:
        reading = drawing.read(a.model, x, clf)
        c1, c2 = st.columns(2)
        c1.image(image_grid(reading.x[None], cols=1, scale=5), width=150)
        c1.caption("What the model gets: your drawing at 28 × 28" +
                   (f", read by the classifier as {drawing.verdict_text(reading.verdict(0))}." if clf else "."))
        c2.image(image_grid(reading.x_hat[None], cols=1, scale=5), width=150)
        c2.caption(plain(f"Its reconstruction by {a.entry.name}")
                   + (f", read as {drawing.verdict_text(reading.verdict(1))}." if clf else "."))
        if clf is None:
            st.caption(no_scores)
        st.markdown(f"**Its code** {drawing.code_text(reading.z)}")
        near = drawing.nearest_digits(codes, reading.z)
        st.markdown(f"**Its {len(near)} nearest test digits** in latent space, nearest first")
        st.image(image_grid(data.x_test[near].numpy() / 255.0, cols=len(near), scale=2), width="content")
        st.caption(" · ".join(f"#{i}: {plain(names[labels[i]])}" for i in near))
        b1, b2 = st.columns(2)
        if b1.button("Start Sliders from this drawing", key="draw_to_sliders", icon=":material/tune:",
                     help="The sliders start at your drawing's code."):
            state.set_sent_code(reading.z, drawing.LABEL, a.fingerprint)
            links.go("pages/sliders.py", {"start": "sent"})
        if b2.button("Use as an Interpolate endpoint", key="draw_to_interpolate", icon=":material/timeline:",
                     help="Walk from your drawing's code to a test digit."):
            state.set_sent_code(reading.z, drawing.LABEL, a.fingerprint)
            links.go("pages/interpolate.py", {"mode": "sent"})

st.subheader("Where it lands on the map")
method, params = drawing.map_choice(a, link)
link.publish({"method": method})
if reading is None:
    spot = None
    job = map_view.request(a, codes, method, params)
else:
    spot = drawing.place(a, codes, reading.z, method, params)
    job = spot.job
if job.status == "error":
    st.error(f"The {METHOD_LABELS[method]} map could not be computed ({plain(job.error)}). Try another one.")
    st.stop()
if job.status != "done":
    drawing.wait_for_map(a, codes, method, params)
    st.stop()
marks = [] if spot is None else [{"x": float(spot.point[0]), "y": float(spot.point[1]), "label": drawing.LABEL,
                                  "color": "#111111"}]
map_canvas.map_chart("draw_map", job.key, job.embedding, labels, names, DIGIT_COLORS,
                     map_view.axis_titles(method, a.config.latent_dim), filename=f"drawing-map-{a.entry.id}-{method}",
                     height=480, pickable=False, equal=method == "native", marks=marks)
hover_card.hover_digits(a.dataset)
st.caption(f"{METHOD_LABELS[method]} of all {len(labels):,} test digits, coloured by label; hover a dot "
           "to see its digit. " + ("Draw a digit to see where it lands." if spot is None else
                                   f"The ringed point is your drawing. {spot.note}"))
