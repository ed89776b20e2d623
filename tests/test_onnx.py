"""Bring your own model: a Latent Lab model exported to ONNX and imported back evaluates as before; a VAE
written outside Latent Lab (the README's pytorch/examples recipe, run here) imports and evaluates to its own
figure; an imported pair lives in the library like a checkpoint and runs behind AutoEncoder's interface."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from tests.test_onnx_hostile import decoder, encoder, helper, model_bytes, vi, weight  # noqa: E402
from vae.assets import TEST_DIGITS, bundled_test_set  # noqa: E402
from vae.checkpoint import CheckpointError, ModelLibrary, load_checkpoint  # noqa: E402
from vae import evaluate as evaluation  # noqa: E402
from vae.latent import decode, encode, reconstruction_errors  # noqa: E402
from vae.models import decoder_layers  # noqa: E402
from vae.onnx import store, validate  # noqa: E402
from vae.onnx.export import export_model  # noqa: E402
from vae.onnx.model import OnnxAutoEncoder, ServerDecodeOnly  # noqa: E402
from vae.ownership import Actor  # noqa: E402
from vae.paths import BUNDLED_MODELS, ROOT  # noqa: E402

TEACHER = Actor("teacher", teacher=True)


@pytest.fixture(scope="module")
def test_digits():
    return bundled_test_set()


@pytest.fixture(scope="module")
def vae2d():
    model, meta = load_checkpoint(BUNDLED_MODELS / "vae-2d.safetensors")
    t0 = time.perf_counter()
    files = export_model(model)
    print(f"export vae-2d: {time.perf_counter() - t0:.1f} s, {sum(map(len, files)) / 1e6:.1f} MB")
    return model, files


@pytest.fixture
def lib(tmp_path):
    return ModelLibrary(tmp_path / "models", BUNDLED_MODELS)


def test_probe_digits_are_the_bundled_ones():
    assert validate.TEST_DIGITS == TEST_DIGITS


def test_a_bundled_model_round_trips(vae2d, lib, test_digits):
    native, (enc, dec) = vae2d
    entry = lib.import_onnx(enc, dec, name="round trip", owner="me")
    spec = entry.meta["onnx"]
    assert (spec.kind, spec.latent_dim, spec.output, spec.encoder_input, spec.decoder_output) == \
        ("vae", 2, "logits", "image", "image")
    model, meta = load_checkpoint(entry.path)
    assert isinstance(model, OnnxAutoEncoder) and meta["fingerprint"] == entry.fingerprint
    x = test_digits.x_test[:300]
    z_native, lv_native = encode(native, x, with_logvar=True)
    z, lv = encode(model, x, with_logvar=True)
    np.testing.assert_allclose(z, z_native, atol=1e-4)
    np.testing.assert_allclose(lv, lv_native, atol=1e-4)
    np.testing.assert_allclose(decode(model, z), decode(native, z), atol=1e-5)
    np.testing.assert_allclose(reconstruction_errors(model, x), reconstruction_errors(native, x), rtol=1e-4)
    before, after = evaluation.evaluate(native, test_digits), evaluation.evaluate(model, test_digits)
    print(f"vae-2d test nats: native {before['test_nats']}, exported and imported {after['test_nats']}")
    assert abs(after["test_nats"] - before["test_nats"]) < 0.5
    assert after["active_units"] == before["active_units"] and set(after) == set(before)


def test_an_imported_model_decodes_on_the_server_only(vae2d, lib):
    model, _ = load_checkpoint(lib.import_onnx(*vae2d[1]).path)
    assert model.runs_in_browser is False
    with pytest.raises(ServerDecodeOnly, match="decoded on the server"):
        decoder_layers(model)
    assert isinstance(ServerDecodeOnly("x"), ValueError)
    assert decode(model, np.zeros((0, 2), np.float32)).shape == (0, 28, 28)
    assert encode(model, torch.zeros(0, 28, 28, dtype=torch.uint8)).shape == (0, 2)


def recipe(marker: str) -> str:
    """The README's code block after <!-- onnx-recipe: marker -->."""
    text = (ROOT / "README.md").read_text()
    found = re.search(rf"<!-- onnx-recipe: {marker} -->\s*```python\n(.*?)```", text, re.S)
    assert found, f"README.md has no onnx-recipe {marker} block"
    return found.group(1)


def own_nats(vae, x_uint8, seed: int = 0, batch: int = 2000) -> float:
    """The pytorch/examples VAE's negative ELBO in nats, computed here with its own layers: the same
    one-sample estimate, from the same generator, that vae.evaluate draws."""
    gen = torch.Generator().manual_seed(seed)
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(x_uint8), batch):
            x = x_uint8[i:i + batch].float().div(255).view(-1, 784)
            mu, logvar = vae.encode(x)
            z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=gen)
            recon = F.binary_cross_entropy(vae.decode(z), x, reduction="none").sum(1)
            kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
            total += (recon + kl).sum().item()
    return total / len(x_uint8)


@pytest.mark.slow
def test_the_readme_recipe_imports_a_pytorch_examples_vae(tmp_path, monkeypatch, test_digits, lib, torch_one_thread):
    """The README's two blocks, run as written, on a 784-400-20 VAE trained here for a few hundred steps."""
    namespace: dict = {}
    exec(recipe("model"), namespace)
    torch.manual_seed(0)
    vae = namespace["VAE"]()
    opt = torch.optim.Adam(vae.parameters(), 1e-3)
    x_all = test_digits.x_test.float().div(255).view(-1, 784)
    for step in range(300):
        x = x_all[(step * 128) % 9984:(step * 128) % 9984 + 128]
        x_hat, mu, logvar = vae(x)
        loss = F.binary_cross_entropy(x_hat, x, reduction="sum") - 0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    monkeypatch.chdir(tmp_path)
    torch.save(vae.state_dict(), "vae.pt")
    exec(recipe("export"), namespace)
    entry = lib.import_onnx((tmp_path / "encoder.onnx").read_bytes(), (tmp_path / "decoder.onnx").read_bytes(),
                            name="pytorch/examples VAE", filenames=("encoder.onnx", "decoder.onnx"))
    spec = entry.meta["onnx"]
    assert (spec.kind, spec.latent_dim, spec.output, spec.encoder_input, spec.decoder_output) == \
        ("vae", 20, "probabilities", "flat", "flat")
    model, _ = load_checkpoint(entry.path)
    theirs = own_nats(vae.eval(), test_digits.x_test)
    ours = evaluation.test_losses(model, test_digits.x_test)["nats"]
    print(f"pytorch/examples VAE: its own figure {theirs:.3f} nats, imported {ours:.3f}")
    assert abs(ours - theirs) < 0.05
    assert theirs < 200  # it learned something: an untrained one is at ~540


@pytest.mark.slow
def test_the_command_line_exports_imports_and_evaluates(tmp_path, data_root):
    """export -> import -> vae.evaluate on the imported path: the same JSON as for the checkpoint."""
    env = {**os.environ, "LATENT_LAB_HOME": str(tmp_path / "home")}

    def run(*args):
        p = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=300)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout.strip().splitlines()[-1])

    checkpoint = str(BUNDLED_MODELS / "ae-2d.safetensors")
    out = run("vae.onnx", "export", checkpoint, "--out", str(tmp_path / "ae"))
    assert (out["kind"], out["latent_dim"]) == ("ae", 2)
    imported = run("vae.onnx", "import", out["encoder"], out["decoder"], "--name", "ae again",
                   "--data-dir", str(data_root))
    assert {"id", "path", "kind", "latent_dim"} <= set(imported) and imported["kind"] == "ae"
    assert imported["path"].startswith(str(tmp_path / "home" / "models"))
    native = run("vae.evaluate", checkpoint, "--data-dir", str(data_root))
    again = run("vae.evaluate", imported["path"], "--data-dir", str(data_root))
    assert set(again) == set(native)
    assert abs(again["test_nats"] - native["test_nats"]) < 0.5 and again["knn_acc"] == native["knn_acc"]
    assert imported["metrics"]["test_nats"] == again["test_nats"]
    entries = ModelLibrary(tmp_path / "home" / "models").entries()
    assert [e.id for e in entries] == [imported["id"]] and entries[0].metrics["test_nats"] == again["test_nats"]


def test_an_imported_pair_is_a_library_model(vae2d, lib):
    entry = lib.import_onnx(*vae2d[1], name="VAE 2-d (bundled)", owner="me")
    assert entry.name == "VAE 2-d (bundled) (2)"  # a bundled model's name is reserved
    assert entry.config.label == "VAE · ONNX · 2-d" and entry.config.has_prior and entry.owner == "me"
    assert [e.id for e in lib.entries()][-1] == entry.id and entry.fingerprint == store.fingerprint(*vae2d[1])
    with pytest.raises(CheckpointError, match="Only whoever"):
        lib.rename(entry.id, "mine now", Actor("someone else"))
    renamed = lib.rename(entry.id, "my onnx", Actor("me"))
    assert renamed.name == "my onnx" and renamed.fingerprint == entry.fingerprint and renamed.owner == "me"
    assert lib.set_class_model(entry.id, True, TEACHER).class_model
    with zipfile_of(lib.onnx_zip(entry.id)) as z:
        assert sorted(z.namelist()) == ["decoder.onnx", "encoder.onnx"]
        assert z.read("encoder.onnx") == vae2d[1][0]
    with pytest.raises(CheckpointError, match="export it"):
        lib.onnx_zip("vae-2d")
    lib.delete(entry.id, TEACHER)
    assert not entry.path.exists() and entry.id not in [e.id for e in lib.entries()]
    assert list(lib.user_dir.iterdir()) == [lib.user_dir / "class-models.json"]


def zipfile_of(data: bytes):
    import io
    import zipfile

    return zipfile.ZipFile(io.BytesIO(data))


def test_a_changed_graph_is_refused_at_load(vae2d, lib):
    entry = lib.import_onnx(*vae2d[1])
    (entry.path / "decoder.onnx").write_bytes(vae2d[1][1][:-1] + b"\0")
    with pytest.raises(CheckpointError, match="changed since it was imported"):
        load_checkpoint(entry.path)
    with pytest.raises(CheckpointError, match="No imported ONNX model"):
        load_checkpoint(lib.user_dir)


def test_a_broken_sidecar_hides_the_entry_and_old_temp_folders_are_swept(vae2d, lib):
    entry = lib.import_onnx(*vae2d[1])
    (entry.path / "model.json").write_text('{"format": "latent-lab-onnx/1", "onnx": {"kind": "gan"}}')
    assert entry.id not in [e.id for e in lib.entries()]
    with pytest.raises(CheckpointError, match="description is unreadable"):
        load_checkpoint(entry.path)
    tmp = lib.user_dir / ".tmp-left-by-a-crash.part"
    tmp.mkdir()
    (tmp / "encoder.onnx").write_bytes(b"x")
    os.utime(tmp, (time.time() - 7200,) * 2)
    assert lib.sweep() == 1 and not tmp.exists()


def test_kinds_layouts_and_batches_follow_the_graphs(lib):
    """One output: an AE; two named (logvar, mu): swapped; --kind ae keeps the mean; a fixed batch of 1 runs
    in chunks; an image-shaped decoder output; probabilities detected, and set by hand."""
    ae = lib.import_onnx(encoder(outputs=1), decoder()).meta["onnx"]
    assert (ae.kind, ae.logvar_output, ae.output) == ("ae", None, "logits")
    swapped = model_bytes([helper.make_node("Gemm", ["x", "W0", "b0"], ["z_log_var"]),
                           helper.make_node("Gemm", ["x", "W1", "b1"], ["z_mean"])],
                          [vi("x", ["B", 784])], [vi("z_log_var", ["B", 4]), vi("z_mean", ["B", 4])],
                          [weight("W0", (784, 4)), weight("b0", (4,), 0.0), weight("W1", (784, 4), seed=1),
                           weight("b1", (4,), 0.0)])
    spec = lib.import_onnx(swapped, decoder()).meta["onnx"]
    assert (spec.mean_output, spec.logvar_output) == (1, 0)
    as_ae = lib.import_onnx(encoder(), decoder(), kind="ae").meta["onnx"]
    assert (as_ae.kind, as_ae.mean_output, as_ae.logvar_output) == ("ae", 0, None)
    fixed = lib.import_onnx(encoder(in_shape=(1, 784), out_shape=[1, 4]), decoder(out_shape=[1, 28, 28]))
    spec = fixed.meta["onnx"]
    assert (spec.encoder_batch, spec.decoder_output) == (1, "image")
    model, _ = load_checkpoint(fixed.path)
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8))
    assert encode(model, x).shape == (5, 4) and decode(model, np.zeros((3, 4))).shape == (3, 28, 28)
    sig = model_bytes([helper.make_node("Gemm", ["z", "W", "b"], ["h"]), helper.make_node("Sigmoid", ["h"], ["y"])],
                      [vi("z", ["B", 4])], [vi("y", ["B", 784])], [weight("W", (4, 784)), weight("b", (784,), 0.0)])
    assert lib.import_onnx(encoder(), sig).meta["onnx"].output == "probabilities"
    assert lib.import_onnx(encoder(), sig, output="logits").meta["onnx"].output == "logits"
    with pytest.raises(CheckpointError, match="dataset must be one of"):
        lib.import_onnx(encoder(), decoder(), dataset="cifar")


def test_listing_imports_neither_onnx_nor_torch(vae2d, tmp_path):
    """The first page lists the library: with an imported pair in it, that still needs no onnx, onnxruntime
    or torch (the ONNX half is read from its JSON sidecar)."""
    ModelLibrary(tmp_path / "models").import_onnx(*vae2d[1], name="light")
    code = ("import sys, json\nfrom vae.checkpoint import ModelLibrary\n"
            f"lib = ModelLibrary({str(tmp_path / 'models')!r})\n"
            "print(json.dumps([[e.name, e.config.label] for e in lib.entries()]))\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'onnx', 'onnxruntime', 'onnxscript'))))")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    listed, heavy = map(json.loads, p.stdout.strip().splitlines())
    assert listed == [["light", "VAE · ONNX · 2-d"]] and heavy == []


PAGES = ["home", "map", "draw", "sliders", "interpolate", "compare", "gallery", "fewlabels", "denoise", "train"]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs_an_imported_model(page, vae2d, fresh_app, monkeypatch):
    """An imported pair as the active model: each page runs without an exception (AppTest; the canvas and
    the in-browser decoder are tests/e2e's)."""
    from streamlit.testing.v1 import AppTest

    from vae.checkpoint import default_library_dir

    monkeypatch.setattr("ui.state.MapService.warm_up", lambda self, *a, **k: None, raising=False)
    entry = ModelLibrary(default_library_dir(), BUNDLED_MODELS).import_onnx(*vae2d[1], name="imported")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.session_state["active_model"] = entry.id
    at.switch_page(f"pages/{page}.py")
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    shown = " ".join(str(getattr(x, "value", "")) for x in [*at.markdown, *at.caption, *at.error, *at.warning])
    assert "Traceback" not in shown
    if page == "sliders":  # an ONNX decoder cannot run in the browser: Streamlit's sliders, decoded on the server
        assert "Decoded on the server" in shown and at.slider and at.image
    print(page, "errors:", [e.value for e in at.error], "warnings:", [w.value for w in at.warning][:3])


# ---------------------------------------------------------------- the page's export, in a child process

def test_exports_are_made_in_a_child_once_and_kept_bounded(monkeypatch, tmp_path):
    """export_zip runs python -m vae.onnx export (this process never loads the exporter), keeps the zip per
    fingerprint, says a failure in one sentence, and keeps at most MAX_KEPT zips, the least recently used
    going first."""
    import zipfile

    from vae.onnx import exports

    assert exports.folder().is_relative_to(tmp_path)  # the test's own cache (tests/conftest.py)
    path = exports.export_zip(BUNDLED_MODELS / "ae-2d.safetensors", "ab" * 8, progress=(heard := []).append)
    assert heard == ["exporting"] and path == exports.folder() / f"{'ab' * 8}.zip"
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == ["decoder.onnx", "encoder.onnx"]
        validate.check_pair(z.read("encoder.onnx"), z.read("decoder.onnx"))
    with monkeypatch.context() as m:  # (not monkeypatch.undo(): that would undo conftest's XDG_CACHE_HOME too)
        m.setattr(exports, "_export", lambda checkpoint: pytest.fail("exported twice"))
        assert exports.export_zip(BUNDLED_MODELS / "ae-2d.safetensors", "ab" * 8) == path  # kept: no second export

    not_a_model = tmp_path / "notes.safetensors"
    not_a_model.write_bytes(b"hello")
    with pytest.raises(store.OnnxError) as e:
        exports.export_zip(not_a_model, "cd" * 8)
    assert "\n" not in str(e.value) and str(e.value).endswith(".") and "notes.safetensors" in str(e.value)
    assert exports.cached("cd" * 8) is None
    for bad in ("../../etc/passwd", "", "ABC"):
        with pytest.raises(store.OnnxError):
            exports.cached(bad)

    monkeypatch.setattr(exports, "EXPORT_SECONDS", 0.01)
    with pytest.raises(store.OnnxError, match=r"took more than 0.01 s and was stopped"):
        exports.export_zip(BUNDLED_MODELS / "ae-2d.safetensors", "ef" * 8)

    monkeypatch.setattr(exports, "MAX_KEPT", 3)
    for i in range(5):
        (zp := exports.folder() / f"{i:016x}.zip").write_bytes(b"z")
        os.utime(zp, (1000 + i, 1000 + i))
    os.utime(path, (10, 10))  # the oldest, but the one just made stays
    assert exports.prune(keep=path) == 3
    assert sorted(p.name for p in exports.folder().glob("*.zip")) == \
        sorted([path.name, f"{4:016x}.zip", f"{3:016x}.zip"])


def test_who_waits_for_another_export_finds_its_zip(monkeypatch):
    import fcntl
    import threading

    from vae.onnx import exports

    exports.folder().mkdir(parents=True)
    monkeypatch.setattr(exports, "_export", lambda checkpoint: pytest.fail("exported although made meanwhile"))
    heard, result = [], []
    with open(exports.folder() / "export.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another export is running
        t = threading.Thread(target=lambda: result.append(exports.export_zip("x.safetensors", "12" * 8, heard.append)))
        t.start()
        deadline = time.time() + 30
        while not heard and time.time() < deadline:
            time.sleep(0.01)
        assert heard == ["waiting"] and not result
        (exports.folder() / f"{'12' * 8}.zip").write_bytes(b"made by the other one")
    t.join(30)
    assert result == [exports.folder() / f"{'12' * 8}.zip"] and heard == ["waiting"]


def test_two_imports_at_once_store_two_whole_pairs(vae2d, lib):
    """Two tabs importing at the same moment: each gets its own folder, both list and load, no temp is left."""
    from concurrent.futures import ThreadPoolExecutor

    _, (enc, dec) = vae2d
    with ThreadPoolExecutor(2) as pool:
        entries = list(pool.map(lambda n: lib.import_onnx(enc, dec, name=n, owner=n), ["tab one", "tab two"]))
    assert len({e.id for e in entries}) == 2
    listed = {e.name: e for e in lib.entries() if not e.bundled}
    assert sorted(listed) == ["tab one", "tab two"] and all(listed[n].owner == n for n in listed)
    for e in entries:
        model, _ = load_checkpoint(e.path)
        assert model.latent_dim == 2
    assert not [p for p in lib.user_dir.iterdir() if p.name.startswith(".tmp-")]
