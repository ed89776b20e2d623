"""Hostile files: every malformed checkpoint gets one plain sentence (no Python internals), from
the bytes of an upload, from a path and from the library listing alike, and a refused upload
leaves the library folder exactly as it was, temp files included."""

from __future__ import annotations

import gzip
import io
import json
import pickle
import zipfile

import numpy as np
import pytest
import torch
from safetensors.torch import save as st_save

from tests.test_checkpoint import assert_plain, never_unpickle, tiny  # noqa: F401 (an autouse fixture)
from vae.checkpoint import (
    FORMAT, MAX_HEADER, CheckpointError, ModelLibrary, checkpoint_bytes, load_checkpoint, read_checkpoint,
    read_header,
)
from vae.classifier import FORMAT as CLASSIFIER_FORMAT
from vae.classifier import DigitClassifier, load_classifier, save_classifier
from vae.models import build_model
from vae.untrusted import MAX_DEPTH

pytestmark = pytest.mark.usefixtures("torch_one_thread")
MODEL = build_model(tiny(), seed=0)
TENSORS = {k: v.contiguous() for k, v in MODEL.state_dict().items()}
CONFIG = MODEL.config.to_dict()
GOOD = checkpoint_bytes(MODEL, name="good")


def raw(header: dict | bytes, body: bytes = b"") -> bytes:
    """A safetensors file built by hand: 8-byte little-endian header length, header, body."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + body


def good_parts() -> tuple[dict, bytes]:
    n = int.from_bytes(GOOD[:8], "little")
    return json.loads(GOOD[8:8 + n]), GOOD[8 + n:]


def with_metadata(metadata) -> bytes:
    """GOOD with its `__metadata__` replaced (the weights untouched)."""
    header, body = good_parts()
    return raw({**header, "__metadata__": metadata}, body)


def with_meta_text(text: str) -> bytes:
    return with_metadata({"latent_lab": text})


def with_meta(**changes) -> bytes:  # a change to None drops the key
    meta = {"format": FORMAT, "config": CONFIG, **changes}
    return with_meta_text(json.dumps({k: v for k, v in meta.items() if v is not None}))


def nested_meta(depth: int) -> str:
    """Our metadata (a JSON object) holding lists nested so that the whole is `depth` deep."""
    return json.dumps({"format": FORMAT, "config": CONFIG})[:-1] + ', "notes": ' + deep(depth - 1) + "}"


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def with_table(**changes) -> bytes:
    """GOOD with some tensor entries of its header replaced."""
    header, body = good_parts()
    return raw({**header, **changes}, body)


def npz() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, w=np.zeros(3), b=np.ones(2))
    return buf.getvalue()


def plain_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "hello")
    return buf.getvalue()


def torch_zip() -> bytes:
    buf = io.BytesIO()
    torch.save(MODEL.state_dict(), buf)
    return buf.getvalue()


def wrong_weights(change) -> bytes:
    tensors = {k: change(k, v.clone()) for k, v in TENSORS.items()}
    return st_save(tensors, metadata={"latent_lab": json.dumps({"format": FORMAT, "config": CONFIG})})


def nan_last(k, v):
    if k == list(TENSORS)[-1]:
        v.view(-1)[0] = float("nan")
    return v


# Files whose header itself is refused: read_header, read_checkpoint and the listing all say no.
BAD_HEADERS = {
    "empty": (lambda: b"", "not a complete safetensors file"),
    "seven-bytes": (lambda: b"\x01" * 7, "not a complete safetensors file"),
    "zero-length-header": (lambda: b"\x00" * 8, "not a readable JSON object"),
    "length-past-end": (lambda: (1000).to_bytes(8, "little") + b"{}", "cut off"),
    "huge-length": (lambda: (2**63).to_bytes(8, "little") + b"{}" * 10, "cut off"),
    "truncated-header": (lambda: GOOD[:200], "cut off"),
    "over-the-header-limit": (lambda: raw(b"{" + b" " * MAX_HEADER + b"}"), "more than the 1,048,576"),
    "header-not-json": (lambda: raw(b"{not json"), "not a readable JSON object"),
    "header-not-utf8": (lambda: raw(b'{"a": "\xff\xfe"}'), "not a readable JSON object"),
    "header-utf16": (lambda: raw('{"a": 1}'.encode("utf-16")), "not a readable JSON object"),
    "header-list": (lambda: raw(b"[1, 2, 3]"), "not a readable JSON object"),
    "header-string": (lambda: raw(b'"hello"'), "not a readable JSON object"),
    "header-nested-100k": (lambda: raw(deep(100_000).encode()), "not a readable JSON object"),
    "header-nested-100k-inside": (lambda: raw(b'{"__metadata__": {}, "x": ' + deep(100_000).encode() + b"}"),
                                  "not a readable JSON object"),
    "header-nested-40": (lambda: raw(b'{"x": ' + b"[" * 40 + b"]" * 40 + b"}"), "not a readable JSON object"),
    "metadata-list": (lambda: with_metadata([1, 2]), "metadata is not a table of texts"),
    "metadata-string": (lambda: with_metadata("latent_lab"), "metadata is not a table of texts"),
    "latent-lab-object": (lambda: with_metadata({"latent_lab": {"format": FORMAT, "config": CONFIG}}),
                          "metadata is not a table of texts"),
    "latent-lab-number": (lambda: with_metadata({"latent_lab": 1}), "metadata is not a table of texts"),
    "metadata-other-number": (lambda: with_metadata({"latent_lab": json.dumps({"format": FORMAT}), "x": 1}),
                              "metadata is not a table of texts"),
    "no-metadata": (lambda: st_save(TENSORS), "not a Latent Lab checkpoint"),
    "foreign-metadata": (lambda: st_save(TENSORS, metadata={"format": "pt"}), "not a Latent Lab checkpoint"),
    "latent-lab-not-json": (lambda: with_meta_text("{not json"), "not a readable JSON object"),
    "latent-lab-empty": (lambda: with_meta_text(""), "not a readable JSON object"),
    "latent-lab-list": (lambda: with_meta_text("[1, 2, 3]"), "not a readable JSON object"),
    "latent-lab-nested-100k": (lambda: with_meta_text(deep(100_000)), "not a readable JSON object"),
    "latent-lab-nested-100k-inside": (lambda: with_meta_text(json.dumps({"format": FORMAT, "config": CONFIG})[:-1]
                                                             + ', "x": ' + deep(100_000) + "}"), "not a readable JSON object"),
    "latent-lab-nested-900": (lambda: with_meta_text(nested_meta(900)), "not a readable JSON object"),
    "no-format": (lambda: with_meta(format=None), "of no known format"),
    "wrong-format": (lambda: with_meta(format="someone-else/2"), "format someone-else/2"),
    "classifier-format": (lambda: with_meta(format=CLASSIFIER_FORMAT), "reads latent-lab/1 only"),
    "format-list": (lambda: with_meta(format=[1, 2]), "of no known format"),
    "format-long": (lambda: with_meta(format="x" * 5000), "format xxx"),
    "format-newline": (lambda: with_meta(format="a\nb"), "format a?b"),
    "no-config": (lambda: with_meta(config=None), "has no model config"),
    "config-string": (lambda: with_meta(config="vae"), "broken model config"),
    "config-list": (lambda: with_meta(config=[1, 2]), "broken model config"),
    "config-hidden-null": (lambda: with_meta(config={**CONFIG, "hidden": None}), "broken model config"),
    "config-hidden-number": (lambda: with_meta(config={**CONFIG, "hidden": 1.5}), "broken model config"),
    "config-beta-huge-int": (lambda: with_meta(config={**CONFIG, "beta": 10**400}), "broken model config"),
    "config-unknown-field": (lambda: with_meta(config={**CONFIG, "bogus": 1}), "bogus"),
    "config-bad-latent": (lambda: with_meta(config={**CONFIG, "latent_dim": 0}), "latent dimension"),
    "config-long-kind": (lambda: with_meta(config={**CONFIG, "kind": "x" * 5000}), "broken model config"),
    "random": (lambda: np.random.default_rng(0).bytes(4096), None),
    "text": (lambda: b"hello world, not a checkpoint", None),
    "ff": (lambda: b"\xff" * 64, None),
    "pickle": (lambda: pickle.dumps({"a": [1, 2, 3]}, protocol=4), "Python pickle"),
    "pickle-protocol-0": (lambda: pickle.dumps({"a": [1, 2, 3]}, protocol=0), "Python pickle"),
    "torch-pt-zip": (torch_zip, "PyTorch .pt/.pth file"),
    "npz": (npz, "NumPy .npz archive"),
    "zip": (plain_zip, "a zip archive"),
    "gzip": (lambda: gzip.compress(b"hello" * 100), "a gzip archive"),
}

# Files whose header is fine but whose weights are not: read_checkpoint (and so any upload) says no.
BAD_WEIGHTS = {
    "wrong-shapes": (lambda: with_meta(config=tiny(latent_dim=3).to_dict()), "wrong shape or type"),
    "float64": (lambda: wrong_weights(lambda k, v: v.double()), "wrong shape or type"),
    "nan": (lambda: wrong_weights(nan_last), "NaN"),
    "inf": (lambda: wrong_weights(lambda k, v: v.fill_(float("inf"))), "NaN"),
    "missing-tensor": (lambda: st_save({k: v for k, v in list(TENSORS.items())[1:]},
                                       metadata={"latent_lab": json.dumps({"format": FORMAT, "config": CONFIG})}),
                       "missing encoder.1.0.weight"),
    "extra-tensor": (lambda: st_save({**TENSORS, "extra.weight": torch.zeros(3)},
                                     metadata={"latent_lab": json.dumps({"format": FORMAT, "config": CONFIG})}),
                     "unexpected extra.weight"),
    "extra-tensors-hostile-names": (lambda: with_table(**{f"x{'y' * 100}\n{i}": {} for i in range(5)}),
                                    "and more"),
    "tensor-entry-string": (lambda: with_table(**{"decoder.0.0.weight": "x"}), "wrong shape or type"),
    "tensor-shape-strings": (lambda: with_table(**{"decoder.0.0.weight": {"dtype": "F32", "shape": ["a"],
                                                                          "data_offsets": [0, 4]}}),
                             "wrong shape or type"),
    "tensor-unknown-dtype": (lambda: with_table(**{"decoder.0.0.weight": {
        **good_parts()[0]["decoder.0.0.weight"], "dtype": "XX"}}), "wrong shape or type"),
    "tensor-offsets-past-end": (lambda: with_table(**{"decoder.0.0.weight": {
        **good_parts()[0]["decoder.0.0.weight"], "data_offsets": [0, 10**12]}}), "damaged"),
    "weights-cut-off": (lambda: GOOD[:len(GOOD) - 100], "damaged"),
    "trailing-bytes": (lambda: GOOD + b"\x00" * 16, "damaged"),
}

CASES = {**BAD_HEADERS, **BAD_WEIGHTS}


def folder_state(folder) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir()}  # dot files (temp files) included


@pytest.mark.parametrize("case", CASES)
def test_read_checkpoint_refuses_with_a_sentence(case):
    make, words = CASES[case]
    with pytest.raises(CheckpointError) as e:
        read_checkpoint(make(), "upload.safetensors")
    msg = assert_plain(e.value)
    assert msg.startswith("upload.safetensors"), msg
    if words:
        assert words.lower() in msg.lower(), msg


@pytest.mark.parametrize("case", CASES)
def test_refused_upload_stores_nothing(tmp_path, case):
    lib = ModelLibrary(tmp_path / "models")
    lib.save(MODEL, name="already there")
    before = folder_state(lib.user_dir)
    with pytest.raises(CheckpointError) as e:
        lib.import_bytes(CASES[case][0](), "upload.safetensors")
    assert_plain(e.value)
    assert folder_state(lib.user_dir) == before
    assert [entry.name for entry in lib.entries()] == ["already there"]


@pytest.mark.parametrize("case", BAD_HEADERS)
def test_header_reader_refuses_bytes_and_paths_alike(tmp_path, case):
    make, words = BAD_HEADERS[case]
    data = make()
    path = tmp_path / "x.safetensors"
    path.write_bytes(data)
    messages = []
    for source, name in ((data, "x.safetensors"), (path, None)):
        with pytest.raises(CheckpointError) as e:
            read_header(source, name)
        messages.append(assert_plain(e.value))
    assert messages[0] == messages[1]  # the same reader, the same sentence
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


@pytest.mark.parametrize("case", CASES)
def test_listing_survives_every_hostile_file(tmp_path, case):
    lib = ModelLibrary(tmp_path / "models")
    good = lib.save(MODEL, name="good")
    (lib.user_dir / "hostile.safetensors").write_bytes(CASES[case][0]())
    listed = [entry.id for entry in lib.entries()]
    assert good.id in listed
    assert ("hostile" in listed) == (case in BAD_WEIGHTS)  # a sound header is listed; loading says what is wrong
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(lib.user_dir / "hostile.safetensors")
    assert_plain(e.value)


@pytest.mark.parametrize("depth", [3, 30, 33, 900, 5000])
def test_nested_metadata_is_stored_and_listed_or_refused_whole(tmp_path, depth):
    """Metadata nested deeper than the reader takes never reaches the library: an upload is
    either refused, leaving nothing, or stored and listed."""
    data = st_save(TENSORS, metadata={"latent_lab": nested_meta(depth)})
    lib = ModelLibrary(tmp_path / "models")
    try:
        entry = lib.import_bytes(data, "deep.safetensors")
    except CheckpointError as e:
        assert_plain(e)
        assert depth > MAX_DEPTH
        assert folder_state(lib.user_dir) == {}
    else:
        assert depth <= MAX_DEPTH
        assert [e.id for e in lib.entries()] == [entry.id]


def test_upload_with_a_header_over_the_limit_is_refused_and_not_written(tmp_path):
    """The upload limit is the listing's: a file the library would not list is never stored."""
    meta = {"format": FORMAT, "config": CONFIG, "notes": "x" * MAX_HEADER}
    data = st_save(TENSORS, metadata={"latent_lab": json.dumps(meta)})
    lib = ModelLibrary(tmp_path / "models")
    with pytest.raises(CheckpointError, match="more than the 1,048,576"):
        lib.import_bytes(data, "big.safetensors")
    assert folder_state(lib.user_dir) == {}


def test_non_ascii_metadata_that_grows_when_saved_is_refused_before_writing(tmp_path):
    """json.dumps escapes non-ASCII text (one character, six bytes): metadata under the limit
    in the upload can be over it once saved, and then must not be written."""
    meta = {"format": FORMAT, "config": CONFIG, "notes": "名" * (MAX_HEADER // 4)}
    data = st_save(TENSORS, metadata={"latent_lab": json.dumps(meta, ensure_ascii=False)})
    assert read_checkpoint(data, "cjk.safetensors")  # the upload itself is within the limit
    lib = ModelLibrary(tmp_path / "models")
    with pytest.raises(CheckpointError, match="Refusing to save") as e:
        lib.import_bytes(data, "cjk.safetensors")
    assert_plain(e.value)
    assert folder_state(lib.user_dir) == {}


def test_saving_metadata_over_the_header_limit_is_refused(tmp_path):
    lib = ModelLibrary(tmp_path / "models")
    with pytest.raises(CheckpointError, match="Refusing to save"):
        lib.save(MODEL, name="chatty", notes="x" * MAX_HEADER)
    assert folder_state(lib.user_dir) == {}


def test_nan_in_uploaded_metadata_is_refused(tmp_path):
    text = json.dumps({"format": FORMAT, "config": CONFIG, "metrics": {"test_nats": float("nan")}})
    lib = ModelLibrary(tmp_path / "models")
    with pytest.raises(CheckpointError, match="NaN") as e:
        lib.import_bytes(st_save(TENSORS, metadata={"latent_lab": text}), "nan.safetensors")
    assert_plain(e.value)
    assert folder_state(lib.user_dir) == {}


def test_zip_files_are_told_apart():
    said = {}
    for case in ("torch-pt-zip", "npz", "zip"):
        with pytest.raises(CheckpointError) as e:
            read_checkpoint(CASES[case][0](), "m.npz")
        said[case] = str(e.value)
    assert "pickle" in said["torch-pt-zip"] and "NumPy" not in said["torch-pt-zip"]
    assert "NumPy .npz" in said["npz"] and "PyTorch" not in said["npz"]
    assert "a zip archive" in said["zip"] and "PyTorch" not in said["zip"] and "NumPy" not in said["zip"]


def test_read_header_reads_bytes_and_paths_alike(tmp_path):
    path = tmp_path / "m.safetensors"
    path.write_bytes(GOOD)
    meta = read_header(path)
    assert meta["config"] == MODEL.config and meta["name"] == "good" and meta["format"] == FORMAT
    assert read_header(GOOD, "m.safetensors") == meta


# ------------------------------------------------------------------ the digit classifier reads through it too


@pytest.fixture
def classifier_file(tmp_path):
    path = tmp_path / "classifier.safetensors"
    save_classifier(DigitClassifier(), path, test_accuracy=0.5)
    return path


def test_classifier_loads_through_the_header_reader(classifier_file):
    assert isinstance(load_classifier(classifier_file), DigitClassifier)
    assert read_header(classifier_file, fmt=CLASSIFIER_FORMAT)["test_accuracy"] == 0.5


@pytest.mark.parametrize("case", ["model", "garbage", "nested", "wrong-tensors", "missing"])
def test_classifier_refuses_with_a_sentence(tmp_path, case):
    path = tmp_path / "classifier.safetensors"
    if case == "model":
        path.write_bytes(GOOD)
    elif case == "garbage":
        path.write_bytes(b"\x01" * 100)
    elif case == "nested":
        path.write_bytes(raw(deep(100_000).encode()))
    elif case == "wrong-tensors":
        path.write_bytes(st_save({"x": torch.zeros(3)},
                                 metadata={"latent_lab": json.dumps({"format": CLASSIFIER_FORMAT})}))
    with pytest.raises(CheckpointError) as e:
        load_classifier(path)
    msg = assert_plain(e.value, max_len=400)
    assert "python -m vae.classifier" in msg
    assert {"model": "format latent-lab/1", "missing": "missing", "wrong-tensors": "damaged or made for another"
            }.get(case, "classifier.safetensors").lower() in msg.lower()
