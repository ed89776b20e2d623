"""Networks packed into one compact binary blob, for running them in a browser (or anywhere else).

    from vae.export import pack_decoder, unpack_decoder, pack_classifier, unpack_classifier, pack_parts
    blob = pack_decoder(decoder_layers(model), dtype="float16", extra={"start": [0.0, 0.0]})
    spec, header = unpack_decoder(blob)   # spec as run_decoder_layers expects, float32 weights
    blob = pack_classifier(classifier_layers(clf))   # the digit classifier (vae.classifier)
    probs = run_classifier_layers(unpack_classifier(blob)[0], images)   # the numpy reference, (N, 10)
    bundle = pack_parts({"maps": [...]}, {"decoder-0": blob, ...})   # several blobs in one payload

Layout (little-endian):

    magic | uint32 n | n bytes of UTF-8 JSON header, padded with spaces to a multiple of 8 | payload

magic is b"LLD1" for a decoder, b"LLC1" for a classifier, b"LLB1" for a bundle of parts. A decoder's
or classifier's header lists the layers (type, relu, stride, padding, pool, and for weight and bias
the element offset into the weights and the shape) plus the caller's `extra` fields; the payload is
one contiguous array of float32 or float16 values. float16 halves the payload; its rounding
(relative error under 5e-4 per weight) does not change the decoded digit visibly, nor a digit
score by more than about 1e-3. A bundle's header names its parts ({name: [byte offset, length]},
each part 8-byte aligned in the payload). The browser reads these formats in ui/nets.js (the Sliders
page's decoder, the maps' hover card).
"""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np

MAGIC = b"LLD1"
CLASSIFIER_MAGIC = b"LLC1"
BUNDLE_MAGIC = b"LLB1"
_WHAT = {MAGIC: "a packed decoder", CLASSIFIER_MAGIC: "a packed classifier", BUNDLE_MAGIC: "a packed bundle"}
DTYPES = ("float32", "float16")
RESERVED = {"dtype", "layers", "digest"}  # header fields that describe the weights


def _pack_weights(spec: list[dict], dtype: str, fields) -> tuple[list[dict], bytes]:
    """The layers' weight and bias as one array; -> (header entries with offsets and shapes, bytes)."""
    if dtype not in DTYPES:
        raise ValueError(f"Weights can be packed as {' or '.join(DTYPES)}, not {dtype!r}.")
    chunks, layers, offset = [], [], 0
    for layer in spec:
        entry = {"type": layer["type"], "relu": bool(layer["relu"])}
        for name in fields.get(layer["type"], ()):
            entry[name] = int(layer[name])
        for name in ("weight", "bias"):
            a = np.ascontiguousarray(layer[name], dtype="<f4" if dtype == "float32" else "<f2")
            entry[name] = [offset, list(a.shape)]
            chunks.append(a.tobytes())
            offset += a.size
        layers.append(entry)
    return layers, b"".join(chunks)


def pack_decoder(spec: list[dict], dtype: str = "float16", extra: dict | None = None) -> bytes:
    """A decoder spec (from `decoder_layers`) -> bytes. `extra` is merged into the JSON header."""
    if dtype not in DTYPES:
        raise ValueError(f"Decoder weights can be packed as {' or '.join(DTYPES)}, not {dtype!r}.")
    if not spec:
        raise ValueError("The decoder has no layers to pack.")
    for layer in spec:
        if layer["type"] not in ("linear", "convT"):
            raise ValueError(f"Unknown decoder layer type {layer['type']!r}.")
    layers, weights = _pack_weights(spec, dtype, {"convT": ("stride", "padding")})
    header = {"dtype": dtype, "layers": layers, "digest": hashlib.sha1(weights).hexdigest()[:16]}
    return _frame(header, weights) if not extra else with_extra(_frame(header, weights), extra)


def with_extra(blob: bytes, extra: dict) -> bytes:
    """The same packed network with `extra` merged into its header (the weights are not re-encoded)."""
    magic = bytes(blob[:4])
    header, start = read_header(blob, magic if magic in (MAGIC, CLASSIFIER_MAGIC) else MAGIC)
    reserved = sorted(RESERVED & set(extra))
    if reserved:
        raise ValueError(f"Extra header fields may not replace {', '.join(reserved)}.")
    return _frame({**header, **extra}, blob[start:], magic)


def _frame(header: dict, payload: bytes, magic: bytes = MAGIC) -> bytes:
    text = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
    text += b" " * (-(len(magic) + 4 + len(text)) % 8)  # the payload starts 8-byte aligned
    return magic + struct.pack("<I", len(text)) + text + payload


def read_header(blob: bytes, magic: bytes = MAGIC) -> tuple[dict, int]:
    """The JSON header and the byte offset where the payload starts."""
    what = _WHAT.get(magic, "a packed blob")
    if len(blob) < 8 or bytes(blob[:4]) != magic:
        raise ValueError(f"These bytes are not {what} (wrong magic number).")
    (n,) = struct.unpack("<I", blob[4:8])
    if 8 + n > len(blob):
        raise ValueError(f"The {what[2:]} is truncated.")
    return json.loads(bytes(blob[8:8 + n])), 8 + n


def _unpack_weights(blob: bytes, magic: bytes) -> tuple[list[dict], dict]:
    header, start = read_header(blob, magic)
    dtype = np.dtype("<f4" if header["dtype"] == "float32" else "<f2")
    if (len(blob) - start) % dtype.itemsize:
        raise ValueError(f"The {_WHAT[magic][2:]} is truncated.")
    values = np.frombuffer(blob, dtype=dtype, offset=start).astype(np.float32)
    spec = []
    for entry in header["layers"]:
        layer = {k: v for k, v in entry.items() if k not in ("weight", "bias")}
        for name in ("weight", "bias"):
            off, shape = entry[name]
            size = int(np.prod(shape))
            if off + size > values.size:
                raise ValueError(f"The {_WHAT[magic][2:]} is truncated.")
            layer[name] = values[off:off + size].reshape(shape)
        spec.append(layer)
    return spec, header


def unpack_decoder(blob: bytes) -> tuple[list[dict], dict]:
    """Bytes -> (spec with float32 numpy weights, header): exactly what a browser decodes with."""
    return _unpack_weights(blob, MAGIC)


# --- the digit classifier ------------------------------------------------------------------------

def classifier_layers(clf) -> list[dict]:
    """The digit classifier (vae.classifier.DigitClassifier, or any nn.Sequential of 3x3-or-so
    convolutions with stride 1, ReLUs, max pools, a flatten and linear layers) as a plain list of layers
    with numpy weights: {"type": "conv", weight (C_out, C_in, k, k), bias, padding, pool, relu} or
    {"type": "linear", weight (out, in), bias, relu}. Dropout is left out (the classifier scores in
    eval mode). The modules are recognised by their class names, so this module needs no torch."""
    spec: list[dict] = []
    for module in (clf.net if hasattr(clf, "net") else clf):
        kind = type(module).__name__
        if kind == "Conv2d":
            k, s, p = module.kernel_size, module.stride, module.padding
            if (s != (1, 1) or k[0] != k[1] or isinstance(p, str) or p[0] != p[1]
                    or module.dilation != (1, 1) or module.groups != 1 or module.bias is None):
                raise ValueError("Only square convolutions with stride 1, a bias and even padding can be packed.")
            spec.append({"type": "conv", "weight": _numpy(module.weight), "bias": _numpy(module.bias),
                         "padding": int(p[0]), "pool": 1, "relu": False})
        elif kind == "Linear":
            spec.append({"type": "linear", "weight": _numpy(module.weight), "bias": _numpy(module.bias),
                         "relu": False})
        elif kind == "ReLU" and spec:
            spec[-1]["relu"] = True  # max pooling and a ReLU commute, so their order does not matter
        elif kind == "MaxPool2d" and spec and spec[-1]["type"] == "conv":
            k, s = module.kernel_size, module.stride
            if k != s or not isinstance(k, int) or module.padding != 0:
                raise ValueError("Only max pools whose stride equals their (square) size can be packed.")
            spec[-1]["pool"] = int(k)
        elif kind not in ("Flatten", "Dropout"):
            raise ValueError(f"A classifier layer {kind} cannot be packed.")
    return spec


def _numpy(t) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def pack_classifier(spec: list[dict], dtype: str = "float16", extra: dict | None = None) -> bytes:
    """A classifier spec (from `classifier_layers`) -> bytes, framed like a decoder but with the magic
    b"LLC1". The header says the input is one 28x28 channel."""
    if not spec or spec[-1]["type"] != "linear":
        raise ValueError("A classifier to pack needs layers, ending in a linear one.")
    for layer in spec:
        if layer["type"] not in ("conv", "linear"):
            raise ValueError(f"Unknown classifier layer type {layer['type']!r}.")
    layers, weights = _pack_weights(spec, dtype, {"conv": ("padding", "pool")})
    header = {"dtype": dtype, "layers": layers, "digest": hashlib.sha1(weights).hexdigest()[:16],
              "input": [1, 28, 28], "classes": int(np.shape(spec[-1]["weight"])[0])}
    blob = _frame(header, weights, CLASSIFIER_MAGIC)
    return with_extra(blob, extra) if extra else blob


def unpack_classifier(blob: bytes) -> tuple[list[dict], dict]:
    """Bytes -> (spec with float32 numpy weights, header)."""
    return _unpack_weights(blob, CLASSIFIER_MAGIC)


def run_classifier_layers(spec: list[dict], images) -> np.ndarray:
    """Numpy reference of a classifier spec: images (N, 28, 28) in [0, 1] -> class probabilities (N, 10)."""
    h = np.asarray(images, np.float32).reshape(-1, 1, 28, 28)
    for layer in spec:
        w, b = layer["weight"], layer["bias"]
        if layer["type"] == "conv":
            k, p = w.shape[2], layer["padding"]
            x = np.pad(h, ((0, 0), (0, 0), (p, p), (p, p)))
            win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))  # (N, C, H, W, k, k)
            h = np.einsum("nchwij,ocij->nohw", win, w, optimize=True) + b[None, :, None, None]
            if layer["relu"]:
                h = np.maximum(h, 0)
            q = layer["pool"]
            if q > 1:
                n, c, hh, ww = h.shape
                h = h[:, :, :hh // q * q, :ww // q * q].reshape(n, c, hh // q, q, ww // q, q).max(axis=(3, 5))
        else:
            h = h.reshape(len(h), -1) @ w.T + b
            if layer["relu"]:
                h = np.maximum(h, 0)
    h = h - h.max(1, keepdims=True)
    e = np.exp(h)
    return (e / e.sum(1, keepdims=True)).astype(np.float32)


# --- several blobs in one payload ----------------------------------------------------------------

def pack_parts(header: dict, parts: dict[str, bytes]) -> bytes:
    """A JSON header and named byte strings -> one blob (magic b"LLB1"); the header gains "parts":
    {name: [byte offset into the payload, length]}, every part starting 8-byte aligned."""
    if "parts" in header:
        raise ValueError("The bundle's header may not set 'parts' itself.")
    chunks, index, offset = [], {}, 0
    for name, data in parts.items():
        data = bytes(data)
        index[str(name)] = [offset, len(data)]
        pad = -len(data) % 8
        chunks.append(data + b"\0" * pad)
        offset += len(data) + pad
    return _frame({**header, "parts": index}, b"".join(chunks), BUNDLE_MAGIC)


def unpack_parts(blob: bytes) -> tuple[dict, dict[str, bytes]]:
    """A bundle -> (its header, {name: bytes})."""
    header, start = read_header(blob, BUNDLE_MAGIC)
    parts = {}
    for name, (offset, length) in header.get("parts", {}).items():
        if start + offset + length > len(blob):
            raise ValueError("The packed bundle is truncated.")
        parts[name] = bytes(blob[start + offset:start + offset + length])
    return header, parts
