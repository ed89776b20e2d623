"""The model library as the pages show it: pickers (class models first, names told apart), whose each
model is, the manage panel (use, rename, delete, pin), uploads, downloads, one-off messages, table rows.

Everyone sees and uses every model; renaming and deleting are offered only where
`ModelLibrary.can_manage(entry, actor)` says so, and a refusal from the core is shown as its one
sentence, with nothing typed lost. Names are text: in Markdown they pass through ui.text.plain.
Imports no torch and no plotly: the shared sidebar uses the pickers' helpers on every page.
"""

from __future__ import annotations

import streamlit as st

from ui import identity, state
from ui.identity import Identity
from ui.text import plain
from vae.checkpoint import CheckpointError, slugify
from vae.ownership import Entry, clean_name

# session_state keys of the library (the browser tests read them too)
FLASH = "train_flash"  # (level, message) shown once above the library
UPLOADED = "train_uploaded"  # file ids of uploads already stored
ONNX_IMPORTED = "train_onnx_imported"  # {"<encoder file id>/<decoder file id>/<options>": entry id} this session
FOLLOW = "train_follow_active"  # set when a model became active or was deleted; the manage picker follows
PICK = "train_pick"  # the manage picker's widget


def ordered(entries: list[Entry]) -> list[Entry]:
    """The library as every picker lists it: the teacher's class models first, then the rest in the
    library's order (bundled, then newest first)."""
    return sorted(entries, key=lambda e: not e.class_model)


def labels(entries: list[Entry], me: Identity) -> dict[str, str]:
    """A plain-text label per model id that tells same-named models apart ("my vae · yours · 14:02")."""
    return state.library().labels(entries, me.owner)


def whose(entry: Entry, me: Identity) -> str:
    """Whose the model is, in a word or two: bundled, class model, yours, a classmate's, saved earlier
    (before models had owners)."""
    if entry.bundled:
        return "bundled"
    if entry.class_model:
        return "class model"
    if entry.owner is None:
        return "saved earlier"
    return "yours" if entry.owner == me.owner else "a classmate's"


def activate(entry_id: str) -> None:
    """Make a model the active one, with the manage picker following it on the next run."""
    state.set_active(entry_id)
    follow_active()


def follow_active() -> None:
    """Point the manage picker at the active model on the next run (e.g. after its pick was deleted)."""
    st.session_state[FOLLOW] = True


# How a kept message is shown, by its level (an explicit table: a level is never looked up on `st`).
FLASH_LEVELS = {"success": st.success, "info": st.info, "error": st.error}


def flash(level: str, text: str) -> None:
    """Keep a message (Markdown: names in it through ui.text.plain) to show once above the library, after
    the rerun that usually follows an action."""
    if level not in FLASH_LEVELS:
        raise ValueError(f"Unknown message level {level!r}: use one of {', '.join(FLASH_LEVELS)}.")
    st.session_state[FLASH] = (level, text)


def show_flash() -> None:
    """Show the kept message, if any, and forget it."""
    if (kept := st.session_state.pop(FLASH, None)) is not None:
        level, text = kept
        FLASH_LEVELS[level](text)


def sync_pick(ids: list[str], active_id: str | None) -> None:
    """Before the manage picker is drawn: point it at the active model (else the first) when a model just
    became active or was deleted, or when its choice left the library; otherwise the user's pick stays."""
    if st.session_state.pop(FOLLOW, False) or st.session_state.get(PICK) not in ids:
        st.session_state[PICK] = active_id if active_id in ids else ids[0]


def download_button(entry: Entry) -> None:
    """The model's checkpoint file as a download (an imported ONNX pair: its two graphs in a zip); the file is
    read only when the button is pressed."""
    if entry.path.is_dir():  # an imported pair's folder (vae.onnx.store)
        st.download_button("Download the ONNX pair (.zip)", data=lambda: state.library().onnx_zip(entry.id),
                           icon=":material/download:", file_name=f"{slugify(entry.name)}-onnx.zip",
                           mime="application/zip", key="train_download", on_click="ignore")
        return
    st.download_button("Download .safetensors", data=entry.path.read_bytes, icon=":material/download:",
                       file_name=f"{slugify(entry.name)}.safetensors", mime="application/octet-stream",
                       key="train_download", on_click="ignore")


def onnx_download(entry: Entry) -> None:
    """A native model as ONNX (encoder.onnx and decoder.onnx in a zip, the import contract): exported in a
    child process the first time anyone asks (vae.onnx.exports, 5-10 s, with its progress shown), then a
    download of the zip kept on disk for that model's weights."""
    from vae.onnx import exports  # standard library only

    file_name = f"{slugify(entry.name)}-onnx.zip"
    try:
        ready = exports.cached(entry.fingerprint)
        if ready is None and st.button("Export as ONNX", icon=":material/output:", key="train_onnx_export",
                                       help="encoder.onnx and decoder.onnx of this model, in the contract Latent "
                                            "Lab imports, to run it anywhere onnxruntime does."):
            with st.status("Exporting to ONNX…", expanded=False) as status:
                def progress(step: str) -> None:
                    status.update(label="Waiting for another export to finish…" if step == "waiting"
                                  else "Exporting to ONNX (about 10 s)…")
                ready = exports.export_zip(entry.path, entry.fingerprint, progress)
                status.update(label="Exported to ONNX.", state="complete")
    except (OSError, ValueError) as e:  # OnnxError is a ValueError with a sentence
        st.error(plain(e if str(e).endswith(".") else "Could not export this model to ONNX."),
                 icon=":material/error:")
        return
    if ready is not None:
        # read when pressed: the zip stays on disk, not in the session; made again if pruned since
        st.download_button("Download as ONNX (.zip)", icon=":material/download:", file_name=file_name,
                           data=lambda: exports.export_zip(entry.path, entry.fingerprint).read_bytes(),
                           mime="application/zip", key="train_onnx_download", on_click="ignore")


AUTO = "auto"


def store_onnx_upload(encoder, decoder, me: Identity, name: str = "", kind: str = AUTO, output: str = AUTO,
                      dataset: str = "mnist") -> Entry:
    """Validate and store an uploaded ONNX pair (two `UploadedFile`s) owned by `me` and make it the active
    model; kind and output "auto" are detected. The same two uploads with the same options are stored once
    per session (a second click makes the first copy active again). Raises CheckpointError with a sentence
    for a pair that is refused (nothing stored)."""
    if encoder is None or decoder is None:
        raise CheckpointError("Choose both files, the encoder and the decoder, then import them.")
    done = st.session_state.setdefault(ONNX_IMPORTED, {})
    key = f"{encoder.file_id}/{decoder.file_id}/{name}/{kind}/{output}/{dataset}"
    lib = state.library()
    if key in done and any(e.id == done[key] for e in lib.entries()):
        activate(done[key])
        return lib.get(done[key])
    added = lib.import_onnx(encoder.getvalue(), decoder.getvalue(), name=name.strip() or None, owner=me.owner,
                            kind=None if kind == AUTO else kind, output=None if output == AUTO else output,
                            dataset=dataset, filenames=(encoder.name, decoder.name))
    done[key] = added.id
    activate(added.id)
    return added


def measure_pair(entry: Entry, dataset: str) -> str | None:
    """Measure an imported pair on the test digits (vae.evaluate's metrics, as `python -m vae.onnx import`
    does) and keep them in its sidecar, so the library and the sidebar show its nats. -> None, or the
    sentence saying why it could not be measured (it stays stored, without figures)."""
    from vae.evaluate import evaluate
    from vae.onnx import store

    if "test_nats" in entry.metrics:
        return None
    try:
        store.update(entry.path, metrics=evaluate(state.get_model(entry.id).model, state.test_data(dataset)))
    except Exception as e:  # onnxruntime, the data or the disk: the model itself is still fine to look at
        return f"It could not be measured on the test digits ({plain(str(e)[:200])}), so it shows no nats."
    return None


def store_upload(upload, me: Identity) -> Entry | None:
    """Store an uploaded checkpoint (an `UploadedFile`) in the library once, owned by `me`, and make it the
    active model.

    Returns its entry, or None when there is no upload or it was stored already (Streamlit hands the same
    file to every later run). Raises CheckpointError with a sentence for a file that is not accepted."""
    if upload is None or upload.file_id in st.session_state.get(UPLOADED, []):
        return None
    added = state.library().import_bytes(upload.getvalue(), upload.name, owner=me.owner)
    st.session_state[UPLOADED] = [*st.session_state.get(UPLOADED, []), upload.file_id]
    activate(added.id)
    return added


def nats(entry: Entry) -> dict[str, float | None]:
    """The model's test figures in nats per digit, on the same footing for every kind: "recon" (the
    reconstruction term, which every model has), and for a model with a prior only "kl" and "elbo" (the
    negative ELBO, recon + KL; an AE has no prior, so no ELBO). Checkpoints without recon_nats get
    test_nats - kl_nats; None where the checkpoint has neither."""
    m, prior = entry.metrics, entry.config.has_prior
    recon = m.get("recon_nats")
    if recon is None and "test_nats" in m and (not prior or "kl_nats" in m):
        recon = m["test_nats"] - (m.get("kl_nats") or 0.0)
    return {"recon": recon, "kl": m.get("kl_nats") if prior else None, "elbo": m.get("test_nats") if prior else None}


def library_rows(entries: list[Entry], active_id: str | None, me: Identity) -> list[dict]:
    """One table row per model, with the metrics the checkpoint carries and whose it is."""
    rows = []
    for e in entries:
        cfg, m = e.config, e.metrics
        rows.append({
            "Name": e.name,
            "Active": e.id == active_id,
            "Model": f"{cfg.kind.upper()} · {cfg.arch.upper()}",
            "Latent dims": cfg.latent_dim,
            "β": f"{cfg.beta:g}" if cfg.has_prior else "–",  # an AE has no KL term, so no β
            "Noise": f"{noise:g}" if (noise := getattr(cfg, "input_noise", 0.0)) > 0 else "–",  # denoising
            "Dataset": e.meta.get("dataset", "mnist"),
            "Recon. nats": nats(e)["recon"],
            "-ELBO nats": nats(e)["elbo"],
            "KL nats": nats(e)["kl"],
            "Active units": m.get("active_units"),
            "kNN acc": m.get("knn_acc"),
            "Source": whose(e, me),
        })
    return rows


LIBRARY_COLUMNS = {
    "Name": st.column_config.TextColumn("Name", width="medium"),
    "Active": st.column_config.CheckboxColumn("Active", width="small", help="The model every page shows"),
    "Model": st.column_config.TextColumn("Model", width="small", help="AE or VAE, MLP or convolutional"),
    "Latent dims": st.column_config.NumberColumn("Dims", width="small", help="Latent dimensions"),
    "Dataset": st.column_config.TextColumn("Dataset", width="small"),
    "Source": st.column_config.TextColumn("Whose", width="medium",
                                          help="Bundled with the app, a class model (pinned by the teacher), yours, "
                                               "a classmate's, or saved before models had owners"),
    "β": st.column_config.TextColumn("β", width="small", help="KL weight (VAE only; – for an AE)"),
    "Noise": st.column_config.TextColumn("Noise σ", width="small",
                                         help="A denoising model: trained on digits with Gaussian noise of this σ "
                                              "added (– for none)"),
    "Recon. nats": st.column_config.NumberColumn("Recon. nats", format="%.1f",
                                                 help="Reconstruction error per test digit, in nats (lower is "
                                                      "better): the one figure every kind of model has"),
    "-ELBO nats": st.column_config.NumberColumn("−ELBO nats", format="%.1f",
                                                help="Negative ELBO per test digit, reconstruction + KL (VAE only: an "
                                                     "AE has no prior, so no ELBO; its – is not a zero)"),
    "KL nats": st.column_config.NumberColumn("KL nats", format="%.2f", help="KL term per test digit (VAE only)"),
    "Active units": st.column_config.NumberColumn("Active units", help="Latent dimensions the codes really use"),
    "kNN acc": st.column_config.ProgressColumn("kNN acc", format="percent", min_value=0.0, max_value=1.0,
                                               width="small", help="3-NN accuracy from 10 labelled codes per class"),
}


def _why_not(entry: Entry) -> str:
    if entry.bundled:
        return "Bundled models come with Latent Lab: they cannot be renamed or deleted."
    if entry.class_model:
        return "A class model: only the teacher can rename or delete it."
    if entry.owner is None:
        return "Saved before models had owners: only the teacher can rename or delete it."
    return "A classmate's model: only whoever trained or uploaded it, or the teacher, can rename or delete it."


# The actions run as callbacks, before the next script run, with the identity of that moment (never
# one captured when the button was drawn): a click is handled even when the run it starts would no longer
# draw the button (the teacher pinned the model meanwhile, the owner changed), and a refusal is the core's
# one sentence above the library, with the typed name still in its field.

def _act(action, done: str, level: str = "success") -> None:
    try:
        action(identity.current().actor)
    except CheckpointError as e:
        flash("error", plain(e))
    else:
        flash(level, done)


def _rename(entry_id: str, label: str) -> None:
    new_name = st.session_state.get(f"train_rename_{entry_id}", "")
    _act(lambda actor: state.library().rename(entry_id, new_name, actor),
         f"Renamed **{plain(label)}** to **{plain(clean_name(new_name))}**.")


def _delete(entry_id: str, label: str) -> None:
    _act(lambda actor: state.library().delete(entry_id, actor), f"Deleted **{plain(label)}**.", "info")
    follow_active()


def _pin(entry_id: str, label: str, pinned: bool) -> None:
    _act(lambda actor: state.library().set_class_model(entry_id, pinned, actor),
         f"**{plain(label)}** is {'now' if pinned else 'no longer'} a class model.")


def _activate(entry_id: str, label: str) -> None:
    state.set_active(entry_id)
    flash("success", f"**{plain(label)}** is now the active model.")


def manage_panel(entry: Entry, label: str, active_id: str | None, me: Identity) -> None:
    """Use (make active, download) for everyone; rename and delete only for who may; pin for the teacher."""
    allowed = state.library().can_manage(entry, me.actor)
    key = entry.id
    with st.container(border=True):
        a, b, c = st.columns(3, gap="medium") if allowed else (*st.columns([1, 2], gap="medium"), None)
        with a:
            st.markdown("**Use**")
            st.button("Make active", icon=":material/check_circle:", key="train_activate", on_click=_activate,
                      args=(key, label), disabled=key == active_id, help="Every page then shows this model.")
            download_button(entry)
            if not entry.path.is_dir():  # a Latent Lab model; an imported pair downloads as its own files
                onnx_download(entry)
        with b:
            if not allowed:
                st.markdown("**Rename or delete**")
                st.caption(_why_not(entry))
            else:
                st.markdown("**Rename**")
                typed = st.text_input("New name", entry.name, max_chars=100, key=f"train_rename_{key}",
                                      label_visibility="collapsed")
                st.button("Rename", icon=":material/edit:", key="train_rename", on_click=_rename, args=(key, label),
                          disabled=typed == entry.name)
        if c is not None:
            with c:
                st.markdown("**Delete**")
                sure = st.checkbox("Yes, delete this file for good", key=f"train_confirm_delete_{key}")
                st.button("Delete", icon=":material/delete:", key="train_delete", on_click=_delete,
                          args=(key, label), disabled=not sure)
        if me.teacher and not entry.bundled:
            pinned = entry.class_model
            st.button("Unpin: no longer a class model" if pinned else "Pin as a class model",
                      icon=":material/push_pin:", key="train_pin", on_click=_pin, args=(key, label, not pinned),
                      help="Class models are listed first in every picker, for the whole class.")
