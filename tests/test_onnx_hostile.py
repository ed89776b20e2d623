"""Hostile ONNX files, built here: each is refused with one sentence, stores nothing, and never shows a
traceback, from the bytes API the upload calls (ModelLibrary.import_onnx) and from the command line."""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
import zipfile
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from vae.checkpoint import CheckpointError, ModelLibrary  # noqa: E402
from vae.onnx import validate  # noqa: E402
from vae.paths import ROOT  # noqa: E402

D = 4
F32 = TensorProto.FLOAT


def vi(name, shape, elem=F32):
    return helper.make_tensor_value_info(name, elem, shape)


def model_bytes(nodes, inputs, outputs, inits=(), opsets=(("", 17),), functions=(), value_info=()) -> bytes:
    graph = helper.make_graph(list(nodes), "g", list(inputs), list(outputs), list(inits), value_info=list(value_info))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets],
                          functions=list(functions))
    m.ir_version = 8
    return m.SerializeToString()


def weight(name, shape, fill=None, seed=0):
    w = np.random.default_rng(seed).normal(0, 0.05, shape).astype(np.float32) if fill is None else \
        np.full(shape, fill, np.float32)
    return numpy_helper.from_array(w, name)


def encoder(d=D, outputs=2, in_shape=("B", 784), w=None, extra_nodes=(), inits=(), opsets=(("", 17),),
            out_shape=None, functions=()) -> bytes:
    """x (B, 784) -> mu, logvar (B, d) by Gemm (or `outputs` copies of them)."""
    names = ["mu", "logvar", "extra"][:outputs]
    nodes = [helper.make_node("Gemm", ["x", f"W{i}", f"b{i}"], [n]) for i, n in enumerate(names)]
    ws = [w if (w is not None and i == 0) else weight(f"W{i}", (784, d), seed=i) for i in range(outputs)]
    ws = [numpy_helper.from_array(numpy_helper.to_array(t), f"W{i}") for i, t in enumerate(ws)]
    bs = [weight(f"b{i}", (d,), 0.0) for i in range(outputs)]
    return model_bytes([*nodes, *extra_nodes], [vi("x", list(in_shape))],
                       [vi(n, out_shape or ["B", d]) for n in names], [*ws, *bs, *inits], opsets, functions)


def decoder(d=D, out=784, out_shape=None, fill=None) -> bytes:
    """z (B, d) -> logits (B, out) by Gemm; with `out_shape`, reshaped to it."""
    nodes = [helper.make_node("Gemm", ["z", "W", "b"], ["y" if out_shape is None else "flat"])]
    inits = [weight("W", (d, out), fill), weight("b", (out,), 0.0)]
    if out_shape is not None:
        nodes.append(helper.make_node("Reshape", ["flat", "shape"], ["y"]))
        inits.append(numpy_helper.from_array(np.array([-1, *out_shape], np.int64), "shape"))
    return model_bytes(nodes, [vi("z", ["B", d])], [vi("y", ["B", *(out_shape or [out])])], inits)


def external_data_encoder() -> bytes:
    m = onnx.ModelProto.FromString(encoder())
    w = m.graph.initializer[0]
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "../../../../etc/passwd"), ("offset", "0"), ("length", str(784 * D * 4))):
        w.external_data.add(key=k, value=v)
    return m.SerializeToString()


def external_constant_encoder() -> bytes:
    """The same, hidden in a Constant node's attribute inside an If branch."""
    t = weight("c", (D,), 1.0)
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value="/etc/shadow")
    branch = helper.make_graph([helper.make_node("Constant", [], ["k"], value=t)], "b", [], [vi("k", [D])])
    cond = numpy_helper.from_array(np.array(True), "cond")
    node = helper.make_node("If", ["cond"], ["k_out"], then_branch=branch, else_branch=branch)
    return encoder(extra_nodes=[node], inits=[cond])


def custom_op_encoder() -> bytes:
    m = onnx.ModelProto.FromString(encoder())
    m.graph.node[0].op_type, m.graph.node[0].domain = "Evil", "com.evil"
    m.opset_import.add(domain="com.evil", version=1)
    return m.SerializeToString()


def custom_function_encoder() -> bytes:
    f = helper.make_function("com.evil", "Twice", ["a"], ["b"], [helper.make_node("Add", ["a", "a"], ["b"])],
                             [helper.make_opsetid("", 17)])
    return encoder(functions=[f], opsets=(("", 17), ("com.evil", 1)))


def huge_inferred_encoder() -> bytes:
    """A ConstantOfShape of 10^10 values that no declared shape mentions: shape inference finds it."""
    shape = numpy_helper.from_array(np.array([100_000, 100_000], np.int64), "big_shape")
    node = helper.make_node("ConstantOfShape", ["big_shape"], ["big"])
    return encoder(extra_nodes=[node], inits=[shape])


def loop_forever_encoder() -> bytes:
    """A Loop of 10^15 trips feeding nothing the outputs need (onnxruntime still runs it)."""
    body = helper.make_graph([helper.make_node("Identity", ["c_in"], ["c_out"]),
                              helper.make_node("Identity", ["v_in"], ["v_out"])], "body",
                             [vi("i", [], TensorProto.INT64), vi("c_in", [], TensorProto.BOOL), vi("v_in", [1])],
                             [vi("c_out", [], TensorProto.BOOL), vi("v_out", [1])])
    inits = [numpy_helper.from_array(np.array(10**15, np.int64), "trips"),
             numpy_helper.from_array(np.array(True), "go"), weight("v0", (1,), 0.0)]
    loop = helper.make_node("Loop", ["trips", "go", "v0"], ["v_end"], body=body)
    add = helper.make_node("Add", ["mu_raw", "v_end"], ["mu"])
    m = onnx.ModelProto.FromString(encoder(extra_nodes=[loop, add], inits=inits))
    m.graph.node[0].output[0] = "mu_raw"
    return m.SerializeToString()


def memory_bomb_encoder(n: int = 1_000_000_000) -> bytes:
    """n floats of 1.0 (4 GB) from a shape computed from the input's values (the largest pixel of test digits
    is 1, times n): no declared or inferred shape says so, only running it does."""
    nodes = [helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0),
             helper.make_node("Mul", ["m", "scale"], ["ms"]),
             helper.make_node("Cast", ["ms"], ["n"], to=TensorProto.INT64),
             helper.make_node("Reshape", ["n", "one"], ["shape"]),
             helper.make_node("ConstantOfShape", ["shape"], ["big"],
                              value=numpy_helper.from_array(np.ones(1, np.float32))),
             helper.make_node("ReduceSum", ["big"], ["s"], keepdims=0),
             helper.make_node("Mul", ["s", "zero"], ["s0"]),
             helper.make_node("Add", ["mu_raw", "s0"], ["mu"])]
    inits = [numpy_helper.from_array(np.array(float(n), np.float32), "scale"),
             numpy_helper.from_array(np.array([1], np.int64), "one"),
             numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
    m = onnx.ModelProto.FromString(encoder(extra_nodes=nodes, inits=inits))
    m.graph.node[0].output[0] = "mu_raw"
    return m.SerializeToString()


def pytorch_zip() -> bytes:
    buf = BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("model/data.pkl", pickle.dumps({"w": [1.0]}))
    return buf.getvalue()


GOOD_E, GOOD_D = encoder(), decoder()
RNG = np.random.default_rng(0)

# name -> (encoder bytes, decoder bytes, import options, a word the sentence must hold)
CASES = {
    "external data outside the folder": (external_data_encoder(), GOOD_D, {}, "another file"),
    "external data in a Constant of a subgraph": (external_constant_encoder(), GOOD_D, {}, "another file"),
    "custom-domain operator": (custom_op_encoder(), GOOD_D, {}, "com.evil"),
    "custom-domain function": (custom_function_encoder(), GOOD_D, {}, "function Twice"),
    "wrong input shape": (encoder(in_shape=("B", 3, 32, 32)), GOOD_D, {}, "(batch, 3, 32, 32)"),
    "NaN codes": (encoder(w=weight("W0", (784, D), np.nan)), GOOD_D, {}, "NaN"),
    "NaN images": (GOOD_E, decoder(fill=np.nan), {}, "NaN"),
    "mismatched latent sizes": (encoder(d=4), decoder(d=8), {}, "4-d codes"),
    "mismatched latent sizes, undeclared": (encoder(d=4, out_shape=["B", "D"]), decoder(d=8), {}, "4-d codes"),
    "truncated file": (GOOD_E[:len(GOOD_E) // 2], GOOD_D, {}, "encoder.onnx"),
    "truncated near the end": (GOOD_E, GOOD_D[:-7], {}, "decoder.onnx"),
    "random bytes": (RNG.bytes(4096), GOOD_D, {}, "encoder.onnx"),
    "empty file": (b"", GOOD_D, {}, "encoder.onnx"),
    "a pickle": (pickle.dumps({"state_dict": {"w": [1.0, 2.0]}}, protocol=4), GOOD_D, {}, "pickle"),
    "a PyTorch zip": (pytorch_zip(), GOOD_D, {}, "PyTorch"),
    "oversized file": (b"\x08\x08" + bytes(validate.MAX_BYTES), GOOD_D, {}, "MB"),
    "huge declared dimension": (GOOD_E, model_bytes([helper.make_node("Identity", ["z"], ["y"])],
                                                    [vi("z", ["B", D])], [vi("y", ["B", 2**40])]), {}, "dimension"),
    "huge inferred tensor": (huge_inferred_encoder(), GOOD_D, {}, "values"),
    "encoder with three outputs": (encoder(outputs=3), GOOD_D, {}, "3 outputs"),
    "decoder returning 3x32x32": (GOOD_E, decoder(out=3 * 32 * 32, out_shape=[3, 32, 32]), {}, "(batch, 3, 32, 32)"),
    "files swapped": (GOOD_D, GOOD_E, {}, "encoder first"),
    "latent size over 128": (encoder(d=1000), decoder(d=1000), {}, "1,000 dimensions"),
    "a VAE without a log-variance": (encoder(outputs=1), GOOD_D, {"kind": "vae"}, "log-variance"),
    "probabilities that are logits": (GOOD_E, GOOD_D, {"output": "probabilities"}, "outside [0, 1]"),
    "4 GB allocated at run time": (memory_bomb_encoder(), GOOD_D, {}, "GB of memory"),
}
CLI_OPTIONS = {"kind": "--kind", "output": "--output"}


def one_sentence(text: str) -> None:
    assert text and "\n" not in text and "Traceback" not in text and len(text) < 400, text
    assert text.endswith("."), text
    assert len(re.split(r"(?<=[.!?])\s+(?=[A-Z])", text)) == 1, text


def stored(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return ModelLibrary(tmp_path_factory.mktemp("models"))


def test_the_good_pair_is_accepted(lib):
    """The hostile cases differ from a pair that imports: what refuses them is what they break."""
    entry = lib.import_onnx(GOOD_E, GOOD_D, name="good")
    assert entry.meta["onnx"].kind == "vae" and entry.config.latent_dim == D
    lib.delete(entry.id, actor=__import__("vae.ownership", fromlist=["Actor"]).Actor("x", teacher=True))


@pytest.mark.parametrize("case", list(CASES))
def test_refused_from_bytes(case, lib):
    enc, dec, options, word = CASES[case]
    before = stored(lib.user_dir)
    with pytest.raises(CheckpointError) as e:
        lib.import_onnx(enc, dec, name=case, **options)
    one_sentence(str(e.value))
    assert word in str(e.value)
    assert stored(lib.user_dir) == before
    assert lib.entries() == []


def test_a_graph_that_never_ends_is_stopped(lib, monkeypatch):
    from vae.onnx import runtime

    monkeypatch.setattr(runtime, "RUN_SECONDS", 1.0)
    with pytest.raises(CheckpointError) as e:
        lib.import_onnx(loop_forever_encoder(), GOOD_D)
    one_sentence(str(e.value))
    assert "stopped" in str(e.value)
    assert lib.entries() == []


def test_a_graph_that_asks_for_4_gb_is_refused_in_its_child_process(lib):
    """The trial run happens in a child with an address-space limit: the 4 GB never reach this process (whose
    peak RSS stays put), the child stays under its limit, and the sentence says why."""
    import resource

    from vae.onnx import probe

    small = memory_bomb_encoder(n=1000)  # the same graph, asking for 4 KB: accepted, so the size is what counts
    assert probe.check_isolated(small, GOOD_D).latent_dim == D
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with pytest.raises(CheckpointError) as e:
        lib.import_onnx(memory_bomb_encoder(), GOOD_D, name="bomb")
    one_sentence(str(e.value))
    assert "needs more than 3 GB of memory" in str(e.value) and "encoder.onnx" in str(e.value)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(f"peak RSS: this process +{grown / 2**20:.0f} MB, the largest child {child_peak / 2**20:.0f} MB")
    assert grown < 200 * 2**20 and child_peak < probe.MEMORY_BYTES
    assert lib.entries() == []


def test_a_check_that_runs_too_long_is_stopped(lib, monkeypatch):
    from vae.onnx import probe

    monkeypatch.setattr(probe, "WALL_SECONDS", 0.05)  # less than the child needs to start
    with pytest.raises(CheckpointError) as e:
        lib.import_onnx(GOOD_E, GOOD_D)
    one_sentence(str(e.value))
    assert "took more than 0.05 s and was stopped" in str(e.value)
    assert lib.entries() == []


def test_refused_from_the_command_line(tmp_path):
    """Every case through `python -m vae.onnx import`, in one interpreter per case: exit 2, one JSON line
    with the sentence, the sentence on stderr, no traceback, and the library folder left empty."""
    home = tmp_path / "home"
    env = {**os.environ, "LATENT_LAB_HOME": str(home)}
    for case, (enc, dec, options, word) in CASES.items():
        folder = tmp_path / re.sub(r"\W+", "-", case)
        folder.mkdir()
        (folder / "encoder.onnx").write_bytes(enc)
        (folder / "decoder.onnx").write_bytes(dec)
        flags = [x for k, v in options.items() for x in (CLI_OPTIONS[k], v)]
        p = subprocess.run([sys.executable, "-m", "vae.onnx", "import", str(folder / "encoder.onnx"),
                            str(folder / "decoder.onnx"), "--no-metrics", *flags],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert p.returncode == 2, (case, p.stdout, p.stderr)
        lines = p.stdout.strip().splitlines()
        assert len(lines) == 1, (case, p.stdout)
        error = json.loads(lines[0])["error"]
        one_sentence(error)
        assert word in error, (case, error)
        assert p.stderr.strip() == f"error: {error}", (case, p.stderr)
        assert [p for p in (home / "models").iterdir() if p.name != "class-models.json"] == [], case


def test_an_oversized_file_is_refused_unread(tmp_path):
    """A sparse file of 65 GB: the command line refuses it by its size, reading none of it."""
    big = tmp_path / "encoder.onnx"
    with open(big, "wb") as f:
        f.truncate(65 * 2**30)
    (tmp_path / "decoder.onnx").write_bytes(GOOD_D)
    p = subprocess.run([sys.executable, "-m", "vae.onnx", "import", str(big), str(tmp_path / "decoder.onnx")],
                       cwd=ROOT, env={**os.environ, "LATENT_LAB_HOME": str(tmp_path / "home")},
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert json.loads(p.stdout)["error"] == "encoder.onnx is over 64 MB, too large for a 28x28 model."
