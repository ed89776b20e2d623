"""Few labels: with only k labelled digits per class, how well are the other test digits labelled from the
active model's codes, from the other bundled models' and from raw pixels?"""

import streamlit as st

from ui import fewlabels, links, state
from ui.layout import ensure_frame
from ui.text import plain
from vae.fewlabels import DRAWS, METHOD_LABELS, METHODS

ensure_frame()
st.title(":material/label: Few labels")
link = links.Link("fewlabels")
st.markdown(
    "The encoder was trained without a single label: it only learned to compress digits and draw them back. "
    "Do digits of one class still end up near each other in its latent space? Here is the test: give it a "
    "**few labelled digits per class** (1 to 100), label every other test digit by its codes' nearest "
    "labelled neighbours, or by the nearest class mean, and count how many come out right. Learning a "
    "representation from unlabelled data first and labels from a handful is *semi-supervised learning*. "
    "The raw pixels are the baseline: an encoder helps only where its codes beat them.")

a = state.require_active()
data = state.require_test_data(a)
labels, names = data.y_test.numpy(), data.class_names
ks = fewlabels.ks_for(labels)
if not ks:
    st.warning("This model's test set has a class with a single digit, so no digit of it would be left to label.")
    st.stop()

c1, c2, c3 = st.columns([4, 4, 2], gap="large")
method = c1.radio("Label by", METHODS, format_func=METHOD_LABELS.get, horizontal=True,
                  key=link.field("method", "fewlabels_method", links.choice(METHODS), "knn"),
                  help="k-nearest neighbours: the 3 nearest labelled digits vote (a tie goes to the nearest, so "
                       "with 1 label per class it is the nearest one). Nearest class mean: each class is the mean "
                       "of its labelled codes, and a digit gets the class whose mean is nearest.")
k = c2.select_slider("Labelled digits per class, shown below", ks,
                     key=link.field("k", "fewlabels_k", links.choice(ks), 10 if 10 in ks else ks[-1], options=ks))
draw = c3.select_slider("Draw", list(range(1, DRAWS + 1)),
                        key=link.field("draw", "fewlabels_draw", links.integer(1, DRAWS), 1),
                        help=f"Each k is measured on {DRAWS} random draws of labelled digits (the same for every "
                             "curve); this one's labelled digits are shown below.")
link.publish({"method": method, "k": k, "draw": draw})

srcs = fewlabels.sources(a, labels)
results, problems = fewlabels.measure(srcs, labels)
for p in problems:
    st.warning(plain(f"Left out: {p}"), icon=":material/warning:")
curves = [(s, results[s.key]) for s in srcs if s.key in results]
mine = results.get(srcs[0].key)
pix = results.get(srcs[-1].key)
if mine is None:
    st.stop()

st.plotly_chart(fewlabels.chart(curves, method, k, len(mine.classes)), key="fewlabels_chart",
                config={"displayModeBar": False})
st.caption(f"Labelled by {METHOD_LABELS[method]}: the mean over {mine.draws} random draws of labelled test digits, "
           "every curve on the same draws; the shaded band is ±1 standard deviation over the draws (error bars "
           "for the other bundled models). Each point scores all the test digits that were not labelled.")

d = draw - 1
m1, m2, m3 = st.columns(3)
gain = None if pix is None else f"{100 * (mine.at(method, k, d) - pix.at(method, k, d)):+.1f} points vs pixels"
m1.metric(plain(f"{a.entry.name}, {METHOD_LABELS[method]}"), f"{mine.at(method, k, d):.1%}", delta=gain)
other = METHODS[1 - METHODS.index(method)]
m2.metric(plain(f"{a.entry.name}, {METHOD_LABELS[other]}"), f"{mine.at(other, k, d):.1%}")
if pix is not None:
    m3.metric(f"Raw pixels, {METHOD_LABELS[method]}", f"{pix.at(method, k, d):.1%}")
st.caption(f"Draw {draw} of {mine.draws}, {k} labelled digit{'s' if k > 1 else ''} per class: "
           f"{len(labels) - k * len(mine.classes):,} test digits labelled.")

left, right = st.columns([3, 2], gap="large")
with left:
    st.subheader("The labelled digits")
    shown = min(k, fewlabels.SHOWN_PER_CLASS)
    order = "0 to 9" if names == [str(i) for i in range(10)] else ", ".join(names)
    st.caption(f"Draw {draw}'s {k} labelled digit{'s' if k > 1 else ''} per class: all the labels "
               f"{plain(a.entry.name)} gets (the pixels and the other models get the same ones). One column per "
               f"class, {plain(order)} from left to right"
               + (f"; the first {shown} of {k} each." if k > shown else "."))
    st.image(fewlabels.examples(data.x_test.numpy(), mine, k, d), width="stretch")
with right:
    st.subheader("What it gets wrong")
    st.caption(f"Of each class's test digits (rows), the share given each label (columns) by "
               f"{METHOD_LABELS[method]} from {plain(a.entry.name)}'s codes, draw {draw}, {k} per class, in %.")
    st.plotly_chart(fewlabels.confusion(labels, mine.predicted(method, k, d), names), key="fewlabels_confusion",
                    config={"displayModeBar": False})

if "knn_acc" in a.entry.metrics:
    st.caption(f"The library's kNN accuracy for this model ({a.entry.metrics['knn_acc']:.1%}) is the same k-NN at "
               "10 labels per class, but with the labelled digits drawn from the training split and a tie going "
               "to the lowest digit.")
