"""AE vs VAE: two models of the same shape side by side, and the holes in their latent spaces measured."""

import streamlit as st

from ui import compare, drawing, explore, hover_card, identity, library, links, map_canvas, state
from ui.text import plain
from ui.figures import DIGIT_COLORS
from vae.checkpoint import CheckpointError
from vae.compare import EMPTY_RADIUS, pair_mismatch
from vae.measures import DEFAULT_GRID, N_PRIOR, N_REFERENCE, N_WALKS, WALK_PATHS, WALK_STEPS
from ui.layout import ensure_frame
from vae.images import image_grid

SHOWN = 40  # of the N_PRIOR prior samples scored per model, the first SHOWN are drawn
STEPS = WALK_STEPS
REGIONS = ["sd", "codes", "box"]
REGION_NAMES = {"sd": "± standard deviations of each model's own codes", "codes": "where each model's codes are",
                "box": "a square around the origin"}
PATHS = list(WALK_PATHS)
DEFAULT_REGION, DEFAULT_SDS, DEFAULT_N_GRID = DEFAULT_GRID  # the view whose scores are stored for the bundled models

ensure_frame()
st.title(":material/compare: AE vs VAE")
link = links.Link("compare")
st.markdown(
    "A plain **autoencoder** (AE) and a **variational** autoencoder (VAE) with the same layers, latent size "
    "and seed differ only in how they were trained. Here each decodes a region and random codes taken on its own "
    "footing (its own codes' spread, a Gaussian fitted to its own codes), the prior's random codes and walks between "
    "test digits, and a digit classifier counts how often the result is a clear digit."
)

entries = library.ordered(state.entries())
by_id = {e.id: e for e in entries}
names_of = library.labels(entries, identity.current())  # same-named models told apart, as in the sidebar
if len(entries) < 2:
    st.info("Comparing needs two models in the library: train an AE and a VAE on **Train & library**.", icon=":material/arrow_back:")
    st.page_link("pages/train.py", label="Go to Train & library", icon=":material/model_training:")
    st.stop()

pairs = compare.bundled_pairs(by_id)
choices = [*pairs, "any"]
choice = st.radio("Models", choices, horizontal=True, key=link.field("pair", "compare_pair", links.choice(choices),
                                                                       choices[0], choices),
                  format_func=lambda k: f"Bundled {k} pair (AE and VAE)" if k in pairs else "Any two from the library")
if choice == "any":
    ids = list(by_id)
    first = compare.default_pair(entries)
    s1, s2 = st.columns(2)
    left_id = s1.selectbox("Left model", ids, format_func=names_of.get,
                           key=link.field("left", "compare_left", links.choice(ids), first[0], ids))
    right_id = s2.selectbox("Right model", ids, format_func=names_of.get,
                            key=link.field("right", "compare_right", links.choice(ids), first[1], ids))
else:
    left_id, right_id = pairs[choice]
link.publish({"pair": choice, "left": left_id if choice == "any" else None,
              "right": right_id if choice == "any" else None})
if left_id == right_id:
    st.info("Pick two different models to compare.")
    st.stop()
try:
    models = [state.get_model(left_id), state.get_model(right_id)]
except CheckpointError as e:
    st.error(f"A model could not be loaded: {plain(e)}")
    st.stop()
if (warning := pair_mismatch(*(m.config for m in models), *(m.dataset for m in models))) is not None:
    st.warning(warning)
datas = [state.require_test_data(m) for m in models]
labels = [d.y_test.numpy() for d in datas]
names = datas[0].class_names
n = min(len(y) for y in labels)

with st.expander("Region, grid, seed and path", expanded=False):
    r1, r2, r3, r4 = st.columns(4)
    mode = r1.radio("Region to decode", REGIONS,
                    key=link.field("region", "compare_region", links.choice(REGIONS), DEFAULT_REGION),
                    format_func=REGION_NAMES.get,
                    help="± k standard deviations of each model's test codes around their mean, on its map: the same "
                         "footing for both, whatever the scale of their codes (the fair one). Or each model's own "
                         "range (1st to 99th percentile of its codes), or a square of ± half-width around the latent "
                         "origin, where the prior N(0, I) puts its samples: fair for a VAE, whose codes are pulled "
                         "there, not for an AE, whose codes may lie anywhere.")
    sds = r2.slider("Standard deviations (±)", 0.5, 4.0, step=0.5, disabled=mode != "sd",
                    key=link.field("sds", "compare_sds", links.number(0.5, 4.0, 0.5), DEFAULT_SDS))
    extent = r2.slider("Box half-width", 0.5, 10.0, step=0.5, disabled=mode != "box",
                       key=link.field("half", "compare_extent", links.number(0.5, 10.0, 0.5), 3.0))
    n_grid = r3.slider("Grid points per side", 6, 24, key=link.field("grid", "compare_grid", links.integer(6, 24), DEFAULT_N_GRID))
    seed = int(r4.number_input("Seed for prior samples", 0, 2**31 - 1,
                               key=link.field("seed", "compare_seed", links.integer(0, 2**31 - 1), 0)))
    p1, p2, p3 = st.columns(3)
    start = int(p1.number_input(f"Walk from test digit # (0 to {n - 1})", 0, n - 1,
                                key=link.field("from", "compare_from", links.integer(0, n - 1), min(3, n - 1))))
    end = int(p2.number_input(f"to test digit # (0 to {n - 1})", 0, n - 1,
                              key=link.field("to", "compare_to", links.integer(0, n - 1), min(2, n - 1))))
    method = p3.radio("Path", PATHS, horizontal=True,
                      key=link.field("path", "compare_method", links.choice(PATHS), "linear"),
                      help="Linear: a straight line between the two codes. Spherical: an arc whose steps keep a "
                           "length between the two codes' lengths, where a straight line's middle dips toward the "
                           "origin. Under N(0, I) in many dimensions almost all samples have about the same length, "
                           "so the arc stays at the length typical prior samples have; it does not follow the data, "
                           "and it means nothing special for an AE, which has no prior.")
link.publish({"region": mode, "half": extent, "grid": n_grid, "seed": seed, "from": start, "to": end, "path": method}
             | {"sds": sds})

clf, no_scores = compare.scorer(models)
try:
    with st.spinner("Decoding grids, prior samples and paths, and scoring them…"):
        measured = compare.measure(models, clf, mode, sds if mode == "sd" else extent, n_grid, N_PRIOR, seed,
                                   start, end, STEPS, method, SHOWN)
except ValueError as e:  # e.g. a diverged model whose codes are not finite
    st.error(f"These models cannot be compared: {plain(e)}")
    st.stop()
reports, paths, planes = measured.reports, measured.paths, measured.planes

st.subheader("The gap, measured fairly")
if mode == "sd":
    region_text = f"±{sds:g} of each model's own standard deviations"
elif mode == "codes":
    region_text = "each model's own code range"
else:
    region_text = f"a square of ±{extent:g} around the origin, the same for both: not the same footing for an AE"
if clf is None:
    st.caption(no_scores)
else:
    st.caption(f"Share of decoded images that a digit classifier calls a confident digit (top class probability ≥ "
               f"{reports[0].threshold:g}): over the {n_grid}×{n_grid} grid of the region ({region_text}); over "
               f"{N_PRIOR} codes drawn from the prior N(0, I) and as many from a Gaussian fitted to each model's own "
               f"test codes (the same draws, moved and stretched to them); over the in-between steps of walks between "
               f"{N_WALKS} random pairs of test digits ({method}). Under each: the difference to the other "
               "model, in percentage points.")
st.caption(f"**Empty** grid points have no test code within {EMPTY_RADIUS:g} of the model's own standard "
           "deviations on its map: places no test digit was mapped to.")
figs = []
cols = st.columns(2, border=True)
for k, col in enumerate(cols):
    rep, other = reports[k], reports[1 - k]
    col.markdown(f"**{models[k].config.kind.upper()}** · {plain(models[k].entry.name)}")
    g1, g2, g3 = col.columns(3)
    g2.metric("Empty points", f"{rep.empty_share:.0%}",
              **explore.share_delta(rep.empty_share, other.empty_share, lower_is_better=True),
              help="Share of the region's grid points with no test code nearby")
    if clf is not None:
        g1.metric("Grid → digit", f"{rep.grid_share:.0%}",
                  **explore.share_delta(rep.grid_share, other.grid_share))
        g3.metric("Empty → digit", "–" if rep.empty_digit_share is None else f"{rep.empty_digit_share:.0%}",
                  help="What the empty grid points decode to: the share of them that is a confident digit")
        h1, h2, h3 = col.columns(3)
        h1.metric("Prior → digit", f"{rep.prior_share:.0%}",
                  **explore.share_delta(rep.prior_share, other.prior_share),
                  help="Samples from the prior N(0, I) that decode to a confident digit: what a VAE is trained for, an "
                       "arbitrary patch of its space for an AE")
        h2.metric("Fitted → digit", f"{rep.fitted_share:.0%}",
                  **explore.share_delta(rep.fitted_share, other.fitted_share),
                  help="Samples from a Gaussian fitted to the model's own test codes (mean and covariance) that decode "
                       "to a confident digit: sampling on each model's own footing")
        h3.metric("Walks → digit", f"{measured.walks[k]:.0%}",
                  **explore.share_delta(measured.walks[k], measured.walks[1 - k]),
                  help=f"In-between steps of {method} walks between {N_WALKS} random pairs of test digits that "
                       "decode to a confident digit")
        col.caption(f"Reference: its reconstructions of {N_REFERENCE:,} real test digits → digit "
                    f"**{measured.reference[k]:.0%}**; the test digits themselves **{measured.originals:.0%}**. "
                    "A share near these is as good as it gets.")
    fig = library.nats(models[k].entry)
    n1, n2, n3 = col.columns(3)
    n1.metric("Recon. nats", "–" if fig["recon"] is None else f"{fig['recon']:.1f}",
              help="Reconstruction error per test digit, in nats (lower is better): every model has one")
    if models[k].config.has_prior:
        n2.metric("KL nats", "–" if fig["kl"] is None else f"{fig['kl']:.1f}", help="KL term per test digit")
        n3.metric("−ELBO nats", "–" if fig["elbo"] is None else f"{fig['elbo']:.1f}",
                  help="Negative ELBO per test digit: reconstruction + KL")
    else:
        col.caption("An AE has no prior, so no KL term and no ELBO: compare the two models on reconstruction "
                    "nats only.")
    figs.append(compare.Figures.of(rep, measured.walks[k], N_WALKS * (STEPS - 2), measured.reference[k]))

with st.container(border=True):
    st.markdown("\n\n".join(compare.verdict([m.config.has_prior for m in models], figs, region_text)))
    if choice == "2-d" and compare.decode_alike(figs):  # what the bundled 2-d pair measured (assets/README.md)
        st.caption("The bundled 2-d pair, measured on each model's own footing, does not show the textbook gap in "
                   "what it decodes: its AE decodes about as well as its VAE. What differs is how much of the region "
                   "its codes leave empty and where N(0, I) falls in its space. The bundled 16-d pair shows the gap "
                   "in samples, from N(0, I) and from a Gaussian fitted to each model's codes (assets/README.md "
                   "records both pairs' figures).")
with st.expander("What a VAE's training changes, and why one expects fewer holes"):
    st.markdown(
        "An autoencoder is only asked to redraw its training digits, so it may put their codes anywhere and at any "
        "scale: nothing stops empty gaps between clusters, and nothing ties its codes to N(0, I). A VAE pays a KL "
        "penalty that pulls every code's distribution toward the bell curve N(0, I), and it decodes a *noisy* sample "
        "of each code while training, so the neighbourhood of every code must decode to something sensible. That is "
        "the textbook reason to expect fewer holes in a VAE; the figures above say how much of it these two models "
        "show, and the text above them follows the figures, not the textbook."
    )

st.subheader("Latent maps")
st.caption(f"Each dot is one of the {n:,} test digits, coloured by its label, in the model's own plane (2-D models) "
           "or the first two principal components of its codes; hover a dot to see the digit. The dashed box is the "
           "region decoded below; the line is the walk, with green steps that look like a digit and red ones that do "
           "not (hover a step for its score).")
cols = st.columns(2)
for k, col in enumerate(cols):
    p, y = planes[k]
    with col:
        map_canvas.map_chart(f"compare_map_{k}", f"{models[k].fingerprint}-{p.name}", y, labels[k], names,
                             DIGIT_COLORS, explore.axis_names(p), region=(reports[k].region.x_range, reports[k].region.y_range),
                             filename=f"compare-map-{models[k].entry.id}", height=420, pickable=False,
                             path=explore.walk(p.transform(paths[k].z), paths[k].scores, paths[k].threshold))
if models[0].dataset == models[1].dataset:  # the hover card shows test images of one dataset
    specs = [hover_card.decode_spec(m, f"compare_map_{k}", p.name, state.active_codes(m), y, projection=p,
                                    label=f"{m.config.kind.upper()} · {m.entry.name}", map_id=f"{m.fingerprint}-{p.name}")
             for k, (m, (p, y)) in enumerate(zip(models, planes))]
    hover_card.hover_digits(models[0].dataset, specs, linked=True)

st.subheader("The region, decoded")
st.caption(f"A {n_grid}×{n_grid} grid of points evenly spaced over the dashed box, each decoded" +
           ("; a red frame marks an image the classifier does not call a confident digit" if clf else "") +
           "; a blue outer edge marks an empty point, with no test code nearby.")
cols = st.columns(2)
for k, col in enumerate(cols):
    col.image(explore.scored_grid(reports[k].grid_images, reports[k].grid_scores, cols=n_grid,
                                  threshold=reports[k].threshold, empty=reports[k].empty), width="stretch")

st.subheader("Dreams from the prior")
st.caption(f"The same {SHOWN} random codes from N(0, I) (seed {seed}) decoded by each model: what you get if you "
           "use it as a generator without looking at any data.")
cols = st.columns(2)
for k, col in enumerate(cols):
    col.image(explore.scored_grid(reports[k].prior_images[:SHOWN], None if clf is None else
                                  reports[k].prior_scores[:SHOWN], cols=10, threshold=reports[k].threshold),
              width="stretch")

st.subheader(f"The same walk, from test #{start} (a {names[labels[0][start]]}) to test #{end} "
             f"(a {names[labels[0][end]]})")
st.caption(f"{method.capitalize()} interpolation in {STEPS} steps between the two digits' codes, in each model's "
           "own space.")
cols = st.columns(2)
for k, col in enumerate(cols):
    col.image(image_grid(paths[k].images, cols=STEPS, scale=2), width="stretch")
    if paths[k].scores is not None:
        col.plotly_chart(explore.score_chart(paths[k].scores, paths[k].threshold, height=180),
                         key=f"compare_scores_{k}", config={"displayModeBar": False})

st.subheader("Your drawing in both models")
drawing.show_in_models(models, "compare_draw")
