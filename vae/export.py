"""The decoder packed into one compact binary blob, for decoding in a browser (or anywhere else).

    from vae.export import pack_decoder, unpack_decoder
    blob = pack_decoder(decoder_layers(model), dtype="float16", extra={"start": [0.0, 0.0]})
    spec, header = unpack_decoder(blob)   # spec as run_decoder_layers expects, float32 weights

Layout (little-endian):

    b"LLD1" | uint32 n | n bytes of UTF-8 JSON header, padded with spaces to a multiple of 8 | weights

The header lists the layers (type, relu, stride, padding, and for weight and bias the element
offset into the weights and the shape) plus the caller's `extra` fields; the weights are one
contiguous array of float32 or float16 values. float16 halves the payload; its rounding
(relative error under 5e-4 per weight) does not change the decoded digit visibly. The Sliders
page's JavaScript reads this format (ui/decoder_component.js).
"""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np

MAGIC = b"LLD1"
DTYPES = ("float32", "float16")
RESERVED = {"dtype", "layers", "digest"}  # header fields that describe the weights


def pack_decoder(spec: list[dict], dtype: str = "float16", extra: dict | None = None) -> bytes:
    """A decoder spec (from `decoder_layers`) -> bytes. `extra` is merged into the JSON header."""
    if dtype not in DTYPES:
        raise ValueError(f"Decoder weights can be packed as {' or '.join(DTYPES)}, not {dtype!r}.")
    if not spec:
        raise ValueError("The decoder has no layers to pack.")
    chunks, layers, offset = [], [], 0
    for layer in spec:
        entry = {"type": layer["type"], "relu": bool(layer["relu"])}
        if layer["type"] == "convT":
            entry["stride"], entry["padding"] = int(layer["stride"]), int(layer["padding"])
        elif layer["type"] != "linear":
            raise ValueError(f"Unknown decoder layer type {layer['type']!r}.")
        for name in ("weight", "bias"):
            a = np.ascontiguousarray(layer[name], dtype="<f4" if dtype == "float32" else "<f2")
            entry[name] = [offset, list(a.shape)]
            chunks.append(a.tobytes())
            offset += a.size
        layers.append(entry)
    weights = b"".join(chunks)
    header = {"dtype": dtype, "layers": layers, "digest": hashlib.sha1(weights).hexdigest()[:16]}
    return _frame(header, weights) if not extra else with_extra(_frame(header, weights), extra)


def with_extra(blob: bytes, extra: dict) -> bytes:
    """The same packed decoder with `extra` merged into its header (the weights are not re-encoded)."""
    header, start = read_header(blob)
    reserved = sorted(RESERVED & set(extra))
    if reserved:
        raise ValueError(f"Extra header fields may not replace {', '.join(reserved)}.")
    return _frame({**header, **extra}, blob[start:])


def _frame(header: dict, weights: bytes) -> bytes:
    text = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
    text += b" " * (-(len(MAGIC) + 4 + len(text)) % 8)  # the weights start 8-byte aligned
    return MAGIC + struct.pack("<I", len(text)) + text + weights


def read_header(blob: bytes) -> tuple[dict, int]:
    """The JSON header and the byte offset where the weights start."""
    if len(blob) < 8 or blob[:4] != MAGIC:
        raise ValueError("These bytes are not a packed decoder (wrong magic number).")
    (n,) = struct.unpack("<I", blob[4:8])
    if 8 + n > len(blob):
        raise ValueError("The packed decoder is truncated.")
    return json.loads(blob[8:8 + n]), 8 + n


def unpack_decoder(blob: bytes) -> tuple[list[dict], dict]:
    """Bytes -> (spec with float32 numpy weights, header): exactly what a browser decodes with."""
    header, start = read_header(blob)
    dtype = np.dtype("<f4" if header["dtype"] == "float32" else "<f2")
    values = np.frombuffer(blob, dtype=dtype, offset=start).astype(np.float32)
    spec = []
    for entry in header["layers"]:
        layer = {k: v for k, v in entry.items() if k not in ("weight", "bias")}
        for name in ("weight", "bias"):
            off, shape = entry[name]
            size = int(np.prod(shape))
            if off + size > values.size:
                raise ValueError("The packed decoder is truncated.")
            layer[name] = values[off:off + size].reshape(shape)
        spec.append(layer)
    return spec, header
