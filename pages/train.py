"""Train & library: train a new AE/VAE in the background, watch it learn, and manage saved models."""

import streamlit as st

from ui import identity, library, links, state, train_form, training
from ui.layout import ensure_frame
from ui.text import plain
from vae.checkpoint import MAX_BYTES, CheckpointError
from vae.data import DATASETS, DataError
from vae.onnx.store import DATASETS as ONNX_DATASETS, MAX_BYTES as ONNX_MAX_BYTES
from vae.train import DEFAULT_LR_NOTE, TrainConfig

ensure_frame()
st.title(":material/model_training: Train & library")
links.Link("train").publish({})
st.markdown("Train your own autoencoder and watch it learn, or pick, rename, download and upload models. "
            "Training runs on the server in the background, so you can explore other pages meanwhile.")

me = identity.current()
try:
    q = training.queue()
except OSError as e:  # the jobs folder cannot be used (read-only, or a shared folder without file locks)
    st.error(plain(e), icon=":material/folder_off:")
    st.stop()
caps = q.caps  # the server's limits: the form's ranges say them
form_col, job_col = st.columns([2, 3], gap="large")

# ---------------------------------------------------------------- the form
# The numeric fields have no bounds: a typed value is always the one that runs, and Start checks them
# all (ui.train_form), naming the field and its range where one is out of it.
with form_col:
    st.subheader("New training")
    with st.container(border=True):
        kind = st.radio("Model", ["vae", "ae"], horizontal=True, key="train_kind",
                        format_func={"vae": "VAE (variational)", "ae": "AE (plain)"}.get,
                        help="A VAE encodes each digit as a small cloud and is pushed towards N(0, I); "
                             "an AE encodes it as a single point.")
        arch = st.radio("Architecture", ["mlp", "conv"], horizontal=True, key="train_arch",
                        format_func={"mlp": "MLP (fully connected)", "conv": "Convolutional"}.get)
        c1, c2 = st.columns(2)
        latent_dim = c1.number_input("Latent dimensions", value=2, step=1, key="train_latent_dim",
                                     help="1 to 128. 2 gives a map you can see directly; more gives sharper digits.")
        hidden_text = c2.text_input("Hidden layer sizes", "512,256", key="train_hidden",
                                    help="Comma-separated, 1 to 4 layers of 8 to 4096 units "
                                         "(for the convolutional model: its dense layer).")
        beta = c1.number_input("β (KL weight)", value=1.0, step=0.1, key="train_beta", disabled=kind == "ae",
                               help="0 to 100; VAE only. Above 1 trades sharpness for a tidier latent space.")
        stop = c2.radio("Stop after", ["time", "epochs"], horizontal=True, key="train_stop",
                        format_func={"time": "a time budget", "epochs": "N epochs"}.get)
        budget = epochs = None
        if stop == "time":
            # no help icon: its button would share the label (the caps caption below says the range)
            budget = c1.number_input("Time budget (seconds)", value=min(60, int(caps["max_train_seconds"])), step=10,
                                     key="train_budget")
        else:
            epochs = c1.number_input("Epochs", value=min(5, caps["max_epochs"]), step=1, key="train_epochs",
                                     help=f"1 to {train_form.epochs_field(caps['max_epochs']).high} on this server. "
                                          "One epoch is one pass over the 60,000 training digits.")
        batch = c2.number_input("Batch size", value=TrainConfig.batch_size, step=32, key="train_batch",
                                help="1 to 8192 digits per step.")
        lr = c1.number_input("Learning rate", value=None, step=1e-3, format="%g", key="train_lr",
                             placeholder="auto",
                             help="Above 0 and at most 1. The peak rate: it warms up over the first 100 steps, then "
                                  "decays along a cosine to the end of the run. Empty (auto): the rate measured "
                                  f"fastest for the network ({DEFAULT_LR_NOTE}). Lower it if training diverges.")
        seed = c2.number_input("Seed", value=0, step=1, key="train_seed",
                               help="0 to 4,294,967,295. The same seed and settings train the same model.")
        input_noise = c1.number_input("Input noise (denoising)", value=0.0, step=0.1, key="train_input_noise",
                                      help=train_form.INPUT_NOISE_HELP)
        dataset = st.selectbox("Dataset", DATASETS, format_func=training.DATASET_NAMES.get, key="train_dataset")
        data_dir = None
        if dataset == "custom":
            data_dir = st.text_input("Folder with the four IDX files", key="train_custom_dir",
                                     placeholder="/path/to/folder", help="train-images-idx3-ubyte, "
                                     "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte "
                                     "(.gz is fine), 28×28 images with labels 0-9.")
            st.caption("On this server the folder must be inside "
                       + " or ".join(plain(r) for r in q.limits.data_roots) + ".")
        if dataset != "custom" and (problem := training.data_problem(dataset)):
            st.warning(f"No training data yet. {plain(problem)}", icon=":material/folder_open:")
        name = st.text_input("Name (optional)", key="train_name", max_chars=100,
                             placeholder="e.g. my first VAE")
        training.caps(q)
        if st.button("Start training", type="primary", icon=":material/play_arrow:", key="train_start", width="stretch"):
            try:
                training.start_training(q, me.owner, kind=kind, arch=arch, latent_dim=latent_dim,
                                        hidden_text=hidden_text, beta=beta, stop=stop, time_budget=budget,
                                        epochs=epochs, batch_size=batch, lr=lr, seed=seed, input_noise=input_noise,
                                        dataset=dataset,
                                        data_dir=data_dir, name=name)
            except (ValueError, DataError) as e:
                st.error(plain(e), icon=":material/error:")
            else:
                st.rerun()


# ---------------------------------------------------------------- your trainings
def show_job() -> None:
    jobs = training.my_jobs(q, me.owner)
    if not jobs:
        st.info("Choose the settings and press **Start training**. Its progress, live loss curves and "
                "reconstructions appear here, and the finished model joins the library below.", icon=":material/arrow_back:")
        training.server_load(q)
        return
    if training.adopt_finished(jobs):  # a training ended: its model is now the active one
        st.rerun()  # the whole app: the sidebar shows the new active model, the refresh stops
    job = training.shown_job(jobs)
    training.job_panel(q, job)
    if not job.finished:
        st.button("Cancel training", icon=":material/stop_circle:", key="train_cancel", disabled=job.cancelling,
                  on_click=training.cancel, args=(q, job.job_id, me.owner))
        training.cancel_problem()
    training.server_load(q)
    training.other_trainings(jobs, job)


with job_col:
    st.subheader("Progress")
    st.fragment(show_job, run_every=1.0 if training.any_running(training.my_jobs(q, me.owner)) else None)()

# ---------------------------------------------------------------- the library
st.divider()
st.subheader("Model library")
st.caption("Everyone here sees and uses every model; a saved model can be renamed or deleted by whoever trained "
           "or uploaded it, and by the teacher, whose class models come first. Nats (reconstruction for every "
           "model, −ELBO for a VAE only, as an AE has no ELBO): lower is better; active units: latent "
           "dimensions the model really uses; kNN accuracy: digits told apart from their codes with only 10 "
           "labels per class.")

entries = library.ordered(state.entries())
active_id = state.active_id()
if not entries:
    library.show_flash()
    st.info("The library is empty: train a model above or upload a checkpoint below.", icon=":material/inbox:")
else:
    st.dataframe(library.library_rows(entries, active_id, me), hide_index=True, key="train_library_table",
                 column_config=library.LIBRARY_COLUMNS)
    by_id = {e.id: e for e in entries}
    names = library.labels(entries, me)
    library.sync_pick(list(by_id), active_id)
    pick = st.selectbox("Model to manage", list(by_id), format_func=names.get, key=library.PICK)
    library.show_flash()  # what the last action did, or the sentence that refused it, beside the buttons
    library.manage_panel(by_id[pick], names[pick], active_id, me)

st.markdown("**Upload a checkpoint**")
upload = st.file_uploader("A .safetensors file saved by Latent Lab", type=["safetensors"], key="train_upload",
                          max_upload_size=MAX_BYTES // 2**20,
                          help=f"Up to {MAX_BYTES // 2**20} MB. Only Latent Lab checkpoints are accepted; "
                               "the file is checked before anything is stored. It is yours to rename or delete.")
try:
    added = library.store_upload(upload, me)
except CheckpointError as e:
    st.error(plain(e), icon=":material/error:")
else:
    if added is not None:
        library.flash("success", f"Added **{plain(added.name)}** to the library; it is now the active model.")
        st.rerun()

# Off by default: the page's one uploader for a class stays the checkpoint's (and the browser tests' too).
if st.toggle("Import an ONNX model", key="train_onnx_open",
             help="An encoder and a decoder of your own, from any framework, exported to ONNX."):
    st.caption("An encoder and a decoder for 28×28 images from any framework (PyTorch, Keras, JAX), exported to "
               "ONNX: the encoder takes (batch, 1, 28, 28) or (batch, 784) floats in [0, 1] and gives a code, or a "
               "mean and a log-variance; the decoder takes the codes and gives images, as logits or probabilities. "
               "Both are checked and tried on test digits before anything is stored; the model is then yours to "
               "rename or delete.")
    with st.container(border=True):
        c1, c2 = st.columns(2)
        onnx_limit = dict(type=["onnx"], max_upload_size=ONNX_MAX_BYTES // 2**20)
        onnx_encoder = c1.file_uploader("Encoder (.onnx)", key="train_onnx_encoder", **onnx_limit,
                                        help=f"Up to {ONNX_MAX_BYTES // 2**20} MB, self-contained (no external "
                                             "data), standard ONNX operators only.")
        onnx_decoder = c2.file_uploader("Decoder (.onnx)", key="train_onnx_decoder", **onnx_limit,
                                        help=f"Up to {ONNX_MAX_BYTES // 2**20} MB; codes (batch, D) in, images out.")
        onnx_name = c1.text_input("Name in the library (optional)", key="train_onnx_name", max_chars=100,
                                  placeholder="e.g. my VAE")
        onnx_dataset = c2.selectbox("Trained on", ONNX_DATASETS, key="train_onnx_dataset",
                                    format_func={"mnist": "MNIST digits", "fashion-mnist": "Fashion-MNIST"}.get)
        onnx_kind = c1.radio("Kind", [library.AUTO, "ae", "vae"], horizontal=True, key="train_onnx_kind",
                             format_func={library.AUTO: "detect", "ae": "AE", "vae": "VAE"}.get,
                             help="Detect: a VAE when the encoder gives two outputs (mean and log-variance), "
                                  "else an AE.")
        onnx_output = c2.radio("Decoder gives", [library.AUTO, "logits", "probabilities"], horizontal=True,
                               key="train_onnx_output", format_func=lambda v: "detect" if v == library.AUTO else v,
                               help="Detect: probabilities when every value is in [0, 1] on test digits, else logits.")
        if st.button("Import the pair", icon=":material/upload:", key="train_onnx_import",
                     disabled=onnx_encoder is None or onnx_decoder is None):
            try:
                with st.spinner("Checking the pair, trying it on test digits and measuring it…"):
                    added = library.store_onnx_upload(onnx_encoder, onnx_decoder, me, name=onnx_name,
                                                      kind=onnx_kind, output=onnx_output, dataset=onnx_dataset)
                    note = library.measure_pair(added, onnx_dataset)
            except CheckpointError as e:
                st.error(plain(e), icon=":material/error:")
            else:
                library.flash("success" if note is None else "info",
                              f"Imported **{plain(added.name)}** into the library; it is now the active model."
                              + ("" if note is None else f" {note}"))
                st.rerun()
