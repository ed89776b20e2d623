"""Denoising: noisy test digits, reconstructed by the active model and by a model trained on noisy digits."""

import streamlit as st

from ui import denoise, identity, library, links, state
from ui.layout import ensure_frame
from ui.text import plain
from vae.checkpoint import CheckpointError
from vae.denoise import MAX_LEVEL, NOISE_KINDS, NOISE_NAMES, NOISY, digit_errors

DIGITS = "denoise_digits"  # session_state: the seed of the shown test digits ("New digits" adds one)


def _new_digits() -> None:
    st.session_state[DIGITS] = int(st.session_state.get(DIGITS, 0)) + 1


ensure_frame()
st.title(":material/blur_on: Denoising")
link = links.Link("denoise")
st.markdown(
    "Add noise to real test digits and ask two models to redraw them. An autoencoder redraws what it has learned "
    "digits look like, so it can clean a digit up. A **denoising** autoencoder was trained for exactly that: it saw "
    "noisy digits and had to redraw the clean ones. The **error** under each picture is how far it is from the "
    "clean digit: the mean squared difference of its pixels (0 is a perfect copy).")

a = state.require_active()
data = state.require_test_data(a)
n = len(data.y_test)
entries = state.entries()
names_of = library.labels(entries, identity.current())  # same-named models told apart, as in the sidebar
options = denoise.denoisers(entries, a.dataset)

c1, c2, c3, c4 = st.columns([2, 3, 3, 1.3], vertical_alignment="bottom")
kind = c1.radio("Noise", NOISE_KINDS, format_func=lambda k: NOISE_NAMES[k].capitalize(), horizontal=True,
                key=link.field("noise", "denoise_noise", links.choice(NOISE_KINDS), NOISE_KINDS[0]))
step = denoise.STEP[kind]
level = c2.slider(denoise.LEVEL_LABEL[kind], 0.0, MAX_LEVEL[kind], step=step, help=denoise.LEVEL_HELP[kind],
                  key=link.field("level", f"denoise_level_{kind}", links.number(0.0, MAX_LEVEL[kind], step),
                                 denoise.DEFAULT_LEVEL[kind]))
denoiser_id = None
if options:
    denoiser_id = c3.selectbox("Denoising model", options, format_func=names_of.get,
                               help="Models of the library trained with input noise above 0.",
                               key=link.field("denoiser", "denoise_model", links.choice(options), options[0], options))
if (seed := link.value("digits", links.integer(0, 2**31 - 1))) is not None:
    st.session_state[DIGITS] = seed
seed = int(st.session_state.setdefault(DIGITS, 0))
c4.button("New digits", icon=":material/casino:", key="denoise_new", on_click=_new_digits,
          help="Show other test digits, with new noise.")
link.publish({"noise": kind, "level": level, "denoiser": denoiser_id, "digits": seed})

denoiser = None
if denoiser_id == a.entry.id:
    st.info("The active model is this denoising model itself, so its row is shown once. Pick a plain model in "
            "the sidebar (AE 16-d, say) to see what training on noisy digits changes.", icon=":material/info:")
elif denoiser_id is not None:
    try:
        denoiser = state.get_model(denoiser_id)
    except CheckpointError as e:
        st.warning(f"The denoising model could not be loaded: {plain(e)}")
if not options:
    st.info(f"No denoising model for {plain(a.dataset)} is in the library, so only the active model redraws the "
            "digits. Train one on **Train & library** with an input noise above 0 (0.5, say).",
            icon=":material/model_training:")

indices = denoise.shown_digits(n, seed)
clean, noisy = denoise.noisy_digits(a.dataset, indices, kind, float(level), seed)
with st.spinner("Reconstructing…"):
    shown = [denoise.Row("clean", "Clean", clean),
             denoise.Row("noisy", "Noisy", noisy, digit_errors(noisy, clean), "the models get these")]
    for key, title, m in (("active", "Active model", a), ("denoiser", "Denoising model", denoiser)):
        if m is not None:
            shown.append(denoise.Row(key, title, *denoise.recons(m, a.dataset, indices, kind, level, seed),
                                     plain(m.entry.name)))
denoise.rows(shown)
st.caption(f"Test digits #{', #'.join(str(i) for i in indices)}, with {NOISE_NAMES[kind]} noise at {level:g}. Each "
           "model gets the noisy row and redraws it from its code; every error is measured against the clean row.")

st.subheader("Error against the noise level")
with st.spinner(f"Measuring both models on {denoise.N_SWEEP} test digits at {denoise.SWEEP_LEVELS} noise levels…"):
    levels, noisy_errors = denoise.noisy_sweep(a.dataset, kind)
    # the legend names the rows, not the models: a model's name is user text, and plotly reads tags in its names
    lines = {NOISY: ("Noisy input (no model)", noisy_errors), "active": ("Active model", denoise.sweep(
        a, a.dataset, kind))}
    if denoiser is not None:
        lines["denoiser"] = ("Denoising model", denoise.sweep(denoiser, a.dataset, kind))
st.plotly_chart(denoise.chart(levels, lines, kind, float(level)), key="denoise_chart",
                config={"displayModeBar": False})
st.caption(f"The mean error of {denoise.N_SWEEP} test digits (the same ones at every level) against their clean "
           "selves. Where a model's line lies below the dotted one, redrawing the digit removed more noise than it "
           "lost detail; a model trained on clean digits only can also redraw a noisy digit as the wrong one.")
