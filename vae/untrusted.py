"""Reading bytes that nobody vouches for (uploads, files a crash or a person left behind): JSON with a
nesting limit, text clipped to one safe line, and the name of a file format that is not ours.
Standard library only."""

from __future__ import annotations

import json
import zipfile
from typing import BinaryIO

MAX_DEPTH = 32  # JSON nesting (ours is 3 deep); refusing deeper keeps every later json call far from recursion limits


def clip(text: str, n: int = 40) -> str:
    """Text from a file, safe in a one-line message: printable and short."""
    text = "".join(c if c.isprintable() else "?" for c in str(text))
    return text if len(text) <= n else text[:n - 1] + "…"


def bounded_json(text: str | bytes) -> object:
    """Parsed JSON nested at most MAX_DEPTH deep, else None (not UTF-8, not JSON, or deeper): never a RecursionError."""
    try:
        value = json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    level = [value]
    for _ in range(MAX_DEPTH):  # breadth first, so the check cannot recurse either
        level = [v for x in level if isinstance(x, (dict, list)) for v in (x.values() if isinstance(x, dict) else x)]
    return None if level else value


def describe_foreign(f: BinaryIO) -> str | None:
    """Name a file that did not parse as safetensors. Never asked first: a safetensors header length
    can begin with any byte (0x80 included), so magic bytes alone would take checkpoints for pickles."""
    f.seek(0)
    head = f.read(4)
    if head[:1] == b"\x80" or head[:2] in (b"(d", b"}q", b"cc"):
        return "a Python pickle, which could run code when loaded"
    if head[:2] == b"\x1f\x8b":
        return "a gzip archive"
    if head != b"PK\x03\x04":
        return None
    try:
        with zipfile.ZipFile(f) as z:
            names = z.namelist()
    except Exception:  # a damaged zip is a zip all the same
        names = []
    if any(n.rsplit("/", 1)[-1] == "data.pkl" for n in names):
        return "a PyTorch .pt/.pth file (a zip of pickles, which could run code when loaded)"
    return "a NumPy .npz archive" if names and all(n.endswith(".npy") for n in names) else "a zip archive"
