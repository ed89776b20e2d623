"""Train & library: train a new AE/VAE in the background, watch it learn, and manage saved models."""

import streamlit as st

from ui import state, training
from vae.checkpoint import MAX_BYTES, CheckpointError
from vae.data import DATASETS, DataError
from vae.train import DEFAULT_LR_NOTE, TrainConfig
from ui.layout import ensure_frame

ensure_frame()
st.title(":material/model_training: Train & library")
st.markdown("Train your own autoencoder and watch it learn, or pick, rename, download and upload models. "
            "Training runs on the server in the background, so you can explore other pages meanwhile.")

q = training.queue()
form_col, job_col = st.columns([2, 3], gap="large")

# ---------------------------------------------------------------- the form
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
        latent_dim = c1.number_input("Latent dimensions", 1, 128, 2, key="train_latent_dim",
                                     help="2 gives a map you can see directly; more gives sharper digits.")
        hidden_text = c2.text_input("Hidden layer sizes", "512,256", key="train_hidden",
                                    help="Comma-separated, 1 to 4 layers of 8 to 4096 units "
                                         "(for the convolutional model: its dense layer).")
        beta = c1.number_input("β (KL weight)", 0.0, 100.0, 1.0, 0.1, key="train_beta", disabled=kind == "ae",
                               help="VAE only. Above 1 trades sharpness for a tidier latent space.")
        stop = c2.radio("Stop after", ["time", "epochs"], horizontal=True, key="train_stop",
                        format_func={"time": "a time budget", "epochs": "N epochs"}.get)
        if stop == "time":
            budget = c1.number_input("Time budget (seconds)", 1, 86_400, 60, step=10, key="train_budget")
            epochs = None
        else:
            epochs = c1.number_input("Epochs", 1, 1000, 5, key="train_epochs",
                                     help="One epoch is one pass over the 60,000 training digits.")
            budget = None
        batch = c2.number_input("Batch size", 8, 8192, TrainConfig.batch_size, step=32, key="train_batch")
        lr = c1.number_input("Learning rate", 1e-5, 1.0, None, step=1e-3, format="%.4f", key="train_lr",
                             placeholder="auto",
                             help="The peak rate: it warms up over the first 100 steps, then decays along a cosine "
                                  f"to the end of the run. Empty (auto): the rate measured fastest for the network "
                                  f"({DEFAULT_LR_NOTE}). Lower it if training diverges.")
        seed = c2.number_input("Seed", 0, 2**31 - 1, 0, key="train_seed",
                               help="The same seed and settings train the same model.")
        dataset = st.selectbox("Dataset", DATASETS, format_func=training.DATASET_NAMES.get, key="train_dataset")
        data_dir = None
        if dataset == "custom":
            data_dir = st.text_input("Folder with the four IDX files", key="train_custom_dir",
                                     placeholder="/path/to/folder", help="train-images-idx3-ubyte, "
                                     "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte "
                                     "(.gz is fine), 28×28 images with labels 0-9.")
        if dataset != "custom" and (problem := training.data_problem(dataset)):
            st.warning(f"No training data yet. {problem}", icon=":material/folder_open:")
        name = st.text_input("Name (optional)", key="train_name", max_chars=100,
                             placeholder="e.g. my first VAE")
        if st.button("Start training", type="primary", icon=":material/play_arrow:", key="train_start", width="stretch"):
            try:
                training.start_training(q, kind=kind, arch=arch, latent_dim=latent_dim, hidden_text=hidden_text,
                                        beta=beta, epochs=epochs, time_budget=budget, batch_size=batch, lr=lr,
                                        seed=seed, dataset=dataset, data_dir=data_dir, name=name)
            except (ValueError, DataError) as e:
                st.error(str(e), icon=":material/error:")
            else:
                st.rerun()


# ---------------------------------------------------------------- the session's training
def show_job() -> None:
    jobs = training.session_jobs(q)
    if not jobs:
        st.info("Choose the settings and press **Start training**. Its progress, live loss curves and "
                "reconstructions appear here, and the finished model joins the library below.", icon=":material/arrow_back:")
        training.server_load(q)
        return
    if training.adopt_finished(jobs):  # a training ended: its model is now the active one
        st.rerun()  # the whole app: the sidebar shows the new active model, the refresh stops
    job = training.shown_job(jobs)
    training.job_panel(job)
    if not job.finished:
        st.button("Cancel training", icon=":material/stop_circle:", key="train_cancel", disabled=job.cancelling,
                  on_click=q.cancel, args=(job.job_id,))
    training.server_load(q)
    training.other_trainings(jobs, job)


with job_col:
    st.subheader("Progress")
    st.fragment(show_job, run_every=1.0 if training.any_running(q) else None)()

# ---------------------------------------------------------------- the library
st.divider()
st.subheader("Model library")
st.caption("Bundled models come with Latent Lab; saved ones are those trained or uploaded here. Test nats: lower "
           "is better; active units: latent dimensions the model really uses; kNN accuracy: digits told apart "
           "from their codes with only 10 labels per class.")
training.show_flash()

entries = state.entries()
active_id = state.active_id()
if not entries:
    st.info("The library is empty: train a model above or upload a checkpoint below.", icon=":material/inbox:")
else:
    st.dataframe(training.library_rows(entries, active_id), hide_index=True, key="train_library_table",
                 column_config=training.LIBRARY_COLUMNS)
    by_id = {e.id: e for e in entries}
    training.sync_pick(list(by_id), active_id)
    pick = st.selectbox("Model to manage", list(by_id), format_func=lambda i: by_id[i].name, key=training.PICK)
    entry = by_id[pick]
    with st.container(border=True):
        a, b, c = st.columns(3, gap="medium")
        with a:
            st.markdown("**Use**")
            if st.button("Make active", icon=":material/check_circle:", key="train_activate", disabled=pick == active_id,
                         help="Every page then shows this model."):
                state.set_active(pick)
                training.flash("success", f"**{entry.name}** is now the active model.")
                st.rerun()
            training.download_button(entry)
        with b:
            st.markdown("**Rename**")
            new_name = st.text_input("New name", entry.name, max_chars=100, key=f"train_rename_{pick}",
                                     disabled=entry.bundled, label_visibility="collapsed")
            if st.button("Rename", icon=":material/edit:", key="train_rename", disabled=entry.bundled or new_name == entry.name):
                try:
                    state.library().rename(pick, new_name)
                except CheckpointError as e:
                    st.error(str(e))
                else:
                    training.flash("success", f"Renamed to **{new_name.strip()}**.")
                    st.rerun()
        with c:
            st.markdown("**Delete**")
            if entry.bundled:
                st.caption("Bundled models cannot be deleted.")
            else:
                sure = st.checkbox("Yes, delete this file for good", key=f"train_confirm_delete_{pick}")
                if st.button("Delete", icon=":material/delete:", key="train_delete", disabled=not sure):
                    try:
                        state.library().delete(pick)
                    except CheckpointError as e:
                        st.error(str(e))
                    else:
                        training.flash("info", f"Deleted **{entry.name}**.")
                        training.follow_active()
                        st.rerun()

st.markdown("**Upload a checkpoint**")
upload = st.file_uploader("A .safetensors file saved by Latent Lab", type=["safetensors"], key="train_upload",
                          max_upload_size=MAX_BYTES // 2**20,
                          help=f"Up to {MAX_BYTES // 2**20} MB. Only Latent Lab checkpoints are accepted; "
                               "the file is checked before anything is stored.")
try:
    added = training.store_upload(upload)
except CheckpointError as e:
    st.error(str(e), icon=":material/error:")
else:
    if added is not None:
        training.flash("success", f"Added **{added.name}** to the library; it is now the active model.")
        st.rerun()
