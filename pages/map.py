"""Latent map: all test digits as dots, placed by their codes; hover to see one, pick some, export."""

import streamlit as st

from ui import hover_card, links, map_canvas, map_layers, map_view, movie, state
from ui.figures import DIGIT_COLORS
from vae.maps.projection import METHOD_LABELS
from ui.layout import ensure_frame
from ui.text import plain
from vae.images import image_grid

ensure_frame()
st.title(":material/scatter_plot: Latent map")
link = links.Link("map")
a = state.require_active()
data = state.require_test_data(a)
z = state.active_codes(a)
labels = data.y_test.numpy()
names = data.class_names
dim = a.config.latent_dim

st.markdown(
    f"Every dot is one of the **{len(labels):,} test digits**, placed where the encoder puts its code and "
    "coloured by its true label. The model never saw the labels: where colours form clean islands, it has "
    "learned on its own which digits are alike. Hover a dot to see the digit, or empty space to see what the "
    "decoder draws there; click a dot or draw a lasso to pick digits and compare them with their "
    "reconstructions, click empty space to decode that point.")
method, params = map_view.controls(dim, link)
link.picks(len(labels))
link.publish({"picks": state.picks()})
st.caption(map_view.ABOUT[method] + ("" if dim <= 2 else f" This model has {dim} latent dimensions, so every "
                                     "view is a projection."))
job = map_view.request(a, z, method, params)

if job.status == "error":
    st.error(f"The {METHOD_LABELS[method]} map could not be computed ({plain(job.error)}). Try other settings or "
             "another method.")
    st.stop()
if job.status != "done":
    map_view.live_map(a, method, params, labels, names)
    hover_card.hover_digits(a.dataset)
    st.stop()

y = job.embedding
native = method == "native"
layer_on, kept_on = map_view.toggles(a, method, link)
kept = map_layers.kept(job.key, z, y) if kept_on else None  # per dot: latent neighbours kept on the map
if native:
    grid, region = map_view.manifold(a, z)
    left, right = st.columns([3, 2], gap="medium")
else:
    region, left = None, st.container()
with left:
    picked = map_canvas.map_chart(
        "map_scatter", job.key, y, labels, names, DIGIT_COLORS, map_view.axis_titles(method, dim), region,
        filename=f"latent-map-{a.entry.id}-{method}", height=map_view.MAP_HEIGHT, picks=state.picks(), space=True,
        layer=layer_on, color_by=None if kept is None else map_layers.color_values(kept))
    hover_card.hover_digits(a.dataset, [hover_card.decode_spec(a, "map_scatter", method, z, y, map_id=job.key)])
    if layer_on:
        map_layers.layer_channel("map_scatter", job.key, a, method)
    st.caption(f"{METHOD_LABELS[method]} of all {len(y):,} test digits · "
               + (f"computed in {job.seconds:.1f} s" if job.started else
                  "computed by another server of this class" if job.elsewhere else "precomputed, loaded from disk")
               + ". Save the picture with **Save PNG** above the map.")
    if kept is not None:
        st.caption(map_layers.kept_caption(kept))
    if (point := map_canvas.clicked_point("map_scatter", job.key)) is not None:
        map_view.point_panel(a, method, z, y, point, names)
if native:
    with right:
        kind = ("evenly spaced in probability under the prior N(0, 1), so the centre is magnified"
                if a.config.has_prior else "evenly spaced over the 1st–99th percentile of the codes")
        st.image(grid, width="stretch")
        st.caption(f"What the decoder draws at each point of the dashed square, {map_view.GRID_N} per side, "
                   f"{kind}. Same orientation as the map: right = higher z₁"
                   + (", up = higher z₂." if dim == 2 else "; a 1-d model has only this one row."))
        st.download_button("Download the grid (PNG)", map_view.grid_png(a.fingerprint, grid), f"manifold-{a.entry.id}.png", "image/png",
                           key="map_grid_png")

st.download_button("Download the map's coordinates (CSV)", map_view.csv_text(job.key, y, labels), f"latent-map-{a.entry.id}-{method}.csv",
                   "text/csv", key="map_csv", help="One row per test digit: index, label, x, y.")

# Folded and lazy: the map stays the page's first and only cost until someone opens the movie.
watch = st.expander("Watch it learn: this map forming during training", icon=":material/movie:", key="map_movie_open",
                    on_change="rerun")
if watch.open:
    with watch:
        movie.section(a, names)

st.subheader("Picked digits")
# In test-set order, so "the first ones" shown are not all from the class drawn first.
picked = sorted(picked)
state.set_picks(picked)  # kept for the other pages and the next visit, and in the address
link.publish({"picks": state.picks()})
if not picked:
    st.caption("Click a dot to pick its digit, or choose **Box select** or **Lasso** above the map and draw "
               "around a group; hold Shift to add to a pick. Double-click the map to clear the pick.")
    st.stop()
shown = picked[:map_view.PICKS_SHOWN]
x, x_hat = map_view.picked_images(a, shown)
scale = 3 if len(shown) <= 4 else 2
c1, c2 = st.columns(2)
for col, title, imgs in ((c1, "Originals", x), (c2, "Reconstructions", x_hat)):
    img = image_grid(imgs, cols=min(6, len(shown)), scale=scale)
    col.markdown(f"**{title}**")
    col.image(img, width=img.width)
sent = min(len(picked), map_view.MAX_PICKS)
if len(picked) > len(shown):
    st.caption(f"Showing {len(shown)} of the {len(picked):,} picked digits (those with the lowest test-set numbers)"
               + (f"; the first {sent} are sent on." if sent < len(picked) else "; all of them are sent on."))
b1, b2, _ = st.columns([1, 1, 2])
if b1.button(f"Send {sent:,} to Sliders", key="map_to_sliders", icon=":material/tune:"):
    links.go("pages/sliders.py", {"start": "picked", "digit": state.picks()[0], "picks": state.picks()})
if b2.button(f"Send {sent:,} to Interpolate", key="map_to_interpolate", icon=":material/timeline:",
             help="Interpolate between two of the picks: the two farthest apart in latent space, or any two."):
    links.go("pages/interpolate.py", {"mode": "map", "picks": state.picks()})
