"""The one reader of ONNX files that nobody vouches for, and the contract an encoder/decoder pair must meet.

    spec = check_pair(encoder_bytes, decoder_bytes, kind=None, output=None)   # PairSpec, or OnnxError

Before onnxruntime ever sees a file: its size; that it is an ONNX protobuf (a pickle, a zip, random or cut
off bytes are named as such); no tensor anywhere (initializers, Constant attributes, subgraphs, local
functions) whose data lives in another file; only the standard operator domains ("", ai.onnx,
ai.onnx.ml), for nodes, imports and functions alike; the onnx checker; every declared or inferred
dimension and tensor size within limits; the inputs and outputs of the contract:

    encoder: (B, 1, 28, 28) or (B, 784) floats in [0, 1] -> (B, D) code, or (B, D) mean and (B, D) log-variance
    decoder: (B, D) -> (B, 1, 28, 28) or (B, 784), logits or probabilities

Then onnxruntime loads both from bytes and a probe batch of real test digits runs through them: codes and
images must be finite and of the right shape, and the two halves must agree on D. Each refusal is one
sentence naming the file; nothing is stored here.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from ..paths import ASSETS
from .store import KINDS, MAX_BYTES, MAX_LATENT, OUTPUTS, OnnxError, PairSpec
from ..untrusted import clip, describe_foreign

MAX_DIM = 1 << 20  # any one declared dimension
MAX_ELEMENTS = 1 << 27  # any tensor of declared or inferred static shape (512 MB of float32)
MAX_BATCH = 65536
STANDARD_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")
FLOATS = {1: "float32", 10: "float16", 11: "float64"}
PROBE = 256  # test digits run through both halves before anything is stored
TEST_DIGITS = ASSETS / "mnist-test.npz"  # vae.assets.TEST_DIGITS (which imports the library, that imports this)


@dataclass(frozen=True)
class Port:
    """A graph input or output as declared: its name, element type and shape (None: unknown dims)."""

    name: str
    elem_type: int
    shape: tuple[int | None, ...] | None

    def shown(self) -> str:
        if self.shape is None:
            return "of no declared shape"
        return "(" + ", ".join("batch" if i == 0 and d is None else "?" if d is None else str(d)
                               for i, d in enumerate(self.shape)) + ")"


def read_model(data: bytes, name: str):
    """Parse and statically check one ONNX file's bytes -> onnx.ModelProto. Raises OnnxError."""
    import onnx

    if len(data) > MAX_BYTES:
        raise OnnxError(f"{name} is over {MAX_BYTES // 2**20} MB, too large for a 28x28 model.")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(bytes(data))
        parsed = model.HasField("graph") and model.ir_version > 0 and len(model.graph.output) > 0
    except Exception:  # protobuf's DecodeError, or worse for hostile bytes
        parsed = False
    if not parsed:
        foreign = describe_foreign(io.BytesIO(bytes(data)))
        raise OnnxError(f"{name} is {foreign}; Latent Lab imports ONNX files only." if foreign else
                        f"{name} is not a complete ONNX model (it is cut off, empty or in another format).")
    for tensor, where in _tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
            location = next((e.value for e in tensor.external_data if e.key == "location"), "another file")
            raise OnnxError(f"{name} keeps the data of {where} in another file ({clip(location)}); only "
                            "self-contained ONNX files are imported (export with external_data=False).")
    for domain, what in _domains(model):
        if domain not in STANDARD_DOMAINS:
            raise OnnxError(f"{name} uses {what} from the domain {clip(domain)}; only standard ONNX operators "
                            "(ai.onnx, ai.onnx.ml) are allowed.")
    if len(model.training_info):
        raise OnnxError(f"{name} holds training steps; export the model for inference only.")
    try:
        onnx.checker.check_model(model)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise OnnxError(f"{name} is not a valid ONNX model ({clip(first.rstrip('.'), 120)}).") from None
    _check_sizes(model, name)
    return model


def _tensors(model):
    """Every TensorProto in the model, with where it is: initializers, attributes, subgraphs, functions."""
    def in_graph(g, where):
        for t in g.initializer:
            yield t, f"initializer {clip(t.name)}"
        for s in g.sparse_initializer:
            yield s.values, f"sparse initializer {clip(s.values.name)}"
            yield s.indices, f"sparse initializer {clip(s.values.name)}"
        yield from in_nodes(g.node, where)

    def in_nodes(nodes, where):
        for node in nodes:
            label = f"{where}node {clip(node.name or node.op_type)}"
            for a in node.attribute:
                for t in [*([a.t] if a.HasField("t") else []), *a.tensors]:
                    yield t, f"the {clip(a.name)} attribute of {label}"
                for s in [*([a.sparse_tensor] if a.HasField("sparse_tensor") else []), *a.sparse_tensors]:
                    yield s.values, f"the {clip(a.name)} attribute of {label}"
                    yield s.indices, f"the {clip(a.name)} attribute of {label}"
                for g in [*([a.g] if a.HasField("g") else []), *a.graphs]:
                    yield from in_graph(g, f"a subgraph of {label}: ")

    yield from in_graph(model.graph, "")
    for f in model.functions:
        yield from in_nodes(f.node, f"function {clip(f.name)}: ")


def _nodes(graph):
    for node in graph.node:
        yield node
        for a in node.attribute:
            for g in [*([a.g] if a.HasField("g") else []), *a.graphs]:
                yield from _nodes(g)


def _domains(model):
    """(domain, what uses it) for every operator import, node and local function."""
    for node in _nodes(model.graph):
        yield node.domain, f"the operator {clip(node.op_type)}"
    for f in model.functions:
        yield f.domain, f"the function {clip(f.name)}"
        for node in f.node:
            yield node.domain, f"the operator {clip(node.op_type)}"
    for op in model.opset_import:  # last: the sentence names what uses a domain where it can
        yield op.domain, "an operator set"


def _shape(value_info) -> tuple[int | None, ...] | None:
    t = value_info.type.tensor_type
    if not value_info.type.HasField("tensor_type") or not t.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)


def _check_sizes(model, name: str) -> None:
    """Every declared dimension (inputs, outputs, value infos, initializers, also after shape inference) in bounds."""
    import onnx

    def check(dims, what):
        known = [d for d in dims if d is not None]
        if any(d < 0 or d > MAX_DIM for d in known):
            big = max(known, key=abs)
            raise OnnxError(f"{name} has a dimension of {big:,} in {what}; at most {MAX_DIM:,} is allowed.")
        if int(np.prod(known, dtype=np.float64)) > MAX_ELEMENTS:
            raise OnnxError(f"{name} has {what} of {int(np.prod(known, dtype=np.float64)):,} values; "
                            f"at most {MAX_ELEMENTS:,} are allowed.")

    graphs = [model.graph]
    try:  # inferred shapes catch a huge tensor the file does not declare; failing to infer is no refusal
        graphs.append(onnx.shape_inference.infer_shapes(model, data_prop=True).graph)
    except Exception:
        pass
    for g in graphs:
        for v in [*g.input, *g.output, *g.value_info]:
            if (shape := _shape(v)) is not None:
                check(shape, f"the tensor {clip(v.name)}")
        for t in g.initializer:
            check(list(t.dims), f"the initializer {clip(t.name)}")


def ports(model) -> tuple[list[Port], list[Port]]:
    """The graph's real inputs (initializers listed as inputs left out) and its outputs."""
    inits = {t.name for t in model.graph.initializer}
    def port(v):
        return Port(v.name, v.type.tensor_type.elem_type, _shape(v))
    return [port(v) for v in model.graph.input if v.name not in inits], [port(v) for v in model.graph.output]


def _batch(p: Port) -> int | None:
    b = p.shape[0] if p.shape else None
    if b is not None and not 1 <= b <= MAX_BATCH:
        raise OnnxError(f"The batch size of {p.name} is {b:,}; it must be free or from 1 to {MAX_BATCH:,}.")
    return b


def _layout(p: Port, who: str, name: str, verb: str) -> str:
    """'image' for (B, 1, 28, 28), 'flat' for (B, 784); unknown dims pass here and meet the probe."""
    s = p.shape
    if s is not None and len(s) == 4 and all(d in (None, want) for d, want in zip(s[1:], (1, 28, 28))):
        return "image"
    if s is not None and len(s) == 2 and s[1] in (None, 784):
        return "flat"
    raise OnnxError(f"The {who} ({name}) {verb} {p.shown()}; it must {verb[:-1]} (batch, 1, 28, 28) or "
                    "(batch, 784) images.")


def _floats(p: Port, who: str, name: str) -> None:
    if p.elem_type not in FLOATS:
        raise OnnxError(f"The {who} ({name}) has {clip(p.name)} of a non-float type; it must be float32, "
                        "float16 or float64.")


def _code_size(p: Port, who: str, name: str, verb: str) -> int | None:
    if p.shape is not None and len(p.shape) != 2:
        raise OnnxError(f"The {who} ({name}) {verb} {p.shown()}; codes are (batch, D).")
    return p.shape[1] if p.shape else None


def check_contract(encoder, decoder, names: tuple[str, str], kind: str | None) -> dict:
    """What the declared inputs and outputs say (layouts, D, batch sizes, which output is the log-variance),
    or OnnxError: a file that cannot meet the contract is refused before it runs."""
    (e_in, e_out), (d_in, d_out) = ports(encoder), ports(decoder)
    en, dn = names
    if len(e_in) != 1:
        raise OnnxError(f"The encoder ({en}) has {len(e_in)} inputs; it must take one, the images.")
    if len(d_in) != 1:
        raise OnnxError(f"The decoder ({dn}) has {len(d_in)} inputs; it must take one, the codes.")
    if (e_in[0].shape and len(e_in[0].shape) == 2 and e_in[0].shape[1] not in (None, 784)
            and d_in[0].shape and (len(d_in[0].shape) == 4 or d_in[0].shape[1:] == (784,))):
        raise OnnxError(f"{en} looks like a decoder and {dn} like an encoder; give the encoder first.")
    if len(e_out) not in (1, 2):
        raise OnnxError(f"The encoder ({en}) has {len(e_out)} outputs; it must give one (the code) or two "
                        "(the mean and the log-variance).")
    if len(d_out) != 1:
        raise OnnxError(f"The decoder ({dn}) has {len(d_out)} outputs; it must give one, the images.")
    for p, who, name in ((e_in[0], "encoder", en), *((o, "encoder", en) for o in e_out),
                         (d_in[0], "decoder", dn), (d_out[0], "decoder", dn)):
        _floats(p, who, name)
    layout_in = _layout(e_in[0], "encoder", en, "takes")
    layout_out = _layout(d_out[0], "decoder", dn, "gives")
    sizes = {_code_size(o, "encoder", en, "gives") for o in e_out} - {None}
    if len(sizes) > 1:
        raise OnnxError(f"The two outputs of the encoder ({en}) have {' and '.join(map(str, sorted(sizes)))} values; "
                        "the mean and the log-variance must be of the same size.")
    d_size = _code_size(d_in[0], "decoder", dn, "takes")
    if sizes and d_size is not None and d_size not in sizes:
        raise OnnxError(f"The encoder ({en}) gives {sizes.pop()}-d codes but the decoder ({dn}) takes "
                        f"{d_size}-d codes; they must be the two halves of one model.")
    for d in (*sizes, d_size):
        if d is not None and not 1 <= d <= MAX_LATENT:
            raise OnnxError(f"The codes have {d:,} dimensions; Latent Lab shows 1 to {MAX_LATENT}.")
    if kind is not None and kind not in KINDS:
        raise OnnxError(f"The kind must be ae or vae, not {clip(kind)}.")
    if kind == "vae" and len(e_out) == 1:
        raise OnnxError(f"The encoder ({en}) gives one output, a code, so import it as an AE; a VAE's encoder "
                        "gives two, the mean and the log-variance.")
    mean, logvar = 0, (1 if len(e_out) == 2 else None)
    if logvar is not None and _is_logvar(e_out[0].name) and not _is_logvar(e_out[1].name):
        mean, logvar = 1, 0  # named (logvar, mu): the names say which is which
    return {"kind": kind or ("vae" if logvar is not None else "ae"), "encoder_input": layout_in,
            "decoder_output": layout_out, "mean_output": mean,
            "logvar_output": None if kind == "ae" else logvar,
            "encoder_batch": _batch(e_in[0]), "decoder_batch": _batch(d_in[0]), "decoder_dim": d_size}


def _is_logvar(name: str) -> bool:
    n = name.lower()
    return "var" in n or "sigma" in n


def probe_digits(n: int = PROBE) -> np.ndarray:
    """The first n bundled MNIST test digits as floats in [0, 1]. (n, 1, 28, 28)"""
    try:
        with np.load(TEST_DIGITS) as f:
            x = f["x"][:n]
    except (OSError, KeyError, ValueError):
        raise OnnxError(f"The bundled test digits ({TEST_DIGITS.name}) are missing, so the model cannot be "
                        "tried before it is stored; rebuild them with python -m vae.assets.") from None
    return (x.astype(np.float32) / 255.0)[:, None]


def check_pair(encoder: bytes, decoder: bytes, kind: str | None = None, output: str | None = None,
               names: tuple[str, str] = ("encoder.onnx", "decoder.onnx"), threads: int | None = None) -> PairSpec:
    """Everything the module docstring lists, for one pair of files' bytes, in this process (the library runs
    it in a child process with resource limits: vae.onnx.probe). Returns how to run them."""
    from .runtime import Graph

    if output is not None and output not in OUTPUTS:
        raise OnnxError(f"The decoder's output must be logits or probabilities, not {clip(output)}.")
    en, dn = names
    contract = check_contract(read_model(encoder, en), read_model(decoder, dn), names, kind)
    graphs = []
    for data, name, batch in ((encoder, en, contract["encoder_batch"]), (decoder, dn, contract["decoder_batch"])):
        try:
            graphs.append(Graph(data, batch, threads))
        except OnnxError as e:
            raise OnnxError(f"{name}: {str(e)[:1].lower()}{str(e)[1:]}") from None
    codes = probe_encoder(graphs[0], contract, en)
    d, d_declared = codes.shape[1], contract.pop("decoder_dim")
    if d_declared is not None and d_declared != d:
        raise OnnxError(f"The encoder ({en}) gives {d}-d codes but the decoder ({dn}) takes {d_declared}-d codes; "
                        "they must be the two halves of one model.")
    probs = probe_decoder(graphs[1], codes, contract, dn)
    in_unit = bool(((probs >= 0) & (probs <= 1)).all())
    if output == "probabilities" and not in_unit:
        raise OnnxError(f"The decoder ({dn}) gives values outside [0, 1] for test digits, so they cannot be "
                        "probabilities; import it with logits.")
    return PairSpec(latent_dim=d, output=output or ("probabilities" if in_unit else "logits"), **contract)


def _run(graph, x, name: str, who: str) -> list[np.ndarray]:
    try:
        return graph(x)
    except OnnxError as e:
        raise OnnxError(f"The {who} ({name}) failed on {len(x)} test digit{'s' * (len(x) > 1)}: "
                        f"{str(e)[:1].lower()}{str(e)[1:]}") from None


def probe_encoder(graph, contract: dict, name: str) -> np.ndarray:
    """Run the encoder on the probe digits (a batch, and one alone): its mean codes, checked. (PROBE, D)"""
    x = probe_digits()
    x = x if contract["encoder_input"] == "image" else x.reshape(len(x), 784)
    outs = _run(graph, x, name, "encoder")
    one = _run(graph, x[:1], name, "encoder")
    for out, first in zip(outs, one):
        if out.ndim != 2 or out.shape[0] != len(x) or first.shape != (1, *out.shape[1:]):
            raise OnnxError(f"The encoder ({name}) gives codes of shape {tuple(out.shape)} for {len(x)} test "
                            f"digits; they must be ({len(x)}, D).")
        if not np.isfinite(out).all():
            raise OnnxError(f"The encoder ({name}) gives NaN or infinite values for test digits.")
    if len({o.shape[1] for o in outs}) > 1:
        raise OnnxError(f"The two outputs of the encoder ({name}) differ in size for test digits; the mean and the "
                        "log-variance must be of the same size.")
    if not 1 <= outs[0].shape[1] <= MAX_LATENT:
        raise OnnxError(f"The codes have {outs[0].shape[1]:,} dimensions; Latent Lab shows 1 to {MAX_LATENT}.")
    return outs[contract["mean_output"]]


def probe_decoder(graph, codes: np.ndarray, contract: dict, name: str) -> np.ndarray:
    """Run the decoder on the probe's codes and on the zero code: its images, checked. (PROBE + 1, 784)"""
    z = np.concatenate([codes, np.zeros((1, codes.shape[1]), np.float32)])
    try:
        out = graph(z)[0]
    except OnnxError as e:  # most often: the two halves disagree on D and the graph did not say so
        raise OnnxError(f"The decoder ({name}) failed on the encoder's {codes.shape[1]}-d codes: "
                        f"{str(e)[:1].lower()}{str(e)[1:]}") from None
    want = (len(z), 1, 28, 28) if contract["decoder_output"] == "image" else (len(z), 784)
    if out.shape != want:
        raise OnnxError(f"The decoder ({name}) gives images of shape {tuple(out.shape)} for {len(z)} codes; "
                        f"they must be {want}.")
    if not np.isfinite(out).all():
        raise OnnxError(f"The decoder ({name}) gives NaN or infinite values for test digits' codes.")
    return out.reshape(len(z), 784)
