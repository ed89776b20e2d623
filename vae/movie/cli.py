"""The command line of the latent movie: a checkpoint's recorded history as an animated GIF, for slides.

    python -m vae.movie my-vae.safetensors --out my-vae.gif [--size 480] [--fps 8]

Prints one JSON line on stdout ({"gif", "frames", "bytes", "size", "fps"}) or, on stderr, one sentence
(and {"error": ...} on stdout). Exit codes: 0 written; 1 the GIF could not be written; 2 bad input (no
such file, not a Latent Lab checkpoint, no recorded history in it, a damaged one, bad options). The GIF
is written atomically: FILE.gif is the old file or the whole new one. No torch is imported.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..fileio import atomic_write
from ..onnx import store as onnx_store
from ..safetensors_header import CheckpointError
from .gif import MAX_FPS, MAX_SIZE, MIN_SIZE, gif_bytes
from .store import read_movie


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    print(json.dumps({"error": message}))
    return code


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vae.movie",
                                description="Render a checkpoint's latent movie (its recorded training) as a GIF.")
    p.add_argument("checkpoint", help="a .safetensors checkpoint trained by Latent Lab")
    p.add_argument("--out", required=True, help="the GIF to write, e.g. movie.gif")
    p.add_argument("--size", type=int, default=480, help=f"pixels square, {MIN_SIZE} to {MAX_SIZE} (default 480)")
    p.add_argument("--fps", type=int, default=8, help=f"frames per second, 1 to {MAX_FPS} (default 8)")
    args = p.parse_args(argv)
    source, out = Path(args.checkpoint), Path(args.out)
    if not MIN_SIZE <= args.size <= MAX_SIZE:
        return _fail(f"--size must be from {MIN_SIZE} to {MAX_SIZE} pixels, not {args.size}.", 2)
    if not 1 <= args.fps <= MAX_FPS:
        return _fail(f"--fps must be from 1 to {MAX_FPS}, not {args.fps}.", 2)
    if out.is_dir():
        return _fail(f"--out {out} is a folder; give the GIF's file name, e.g. {out / 'movie.gif'}.", 2)
    if not out.parent.is_dir():
        return _fail(f"The folder for the GIF (--out), {out.parent}, does not exist.", 2)
    if onnx_store.is_pair(source) or source.is_dir():
        return _fail(f"{source.name} is an imported ONNX model or a folder; only a model trained by Latent Lab "
                     "has a recorded history.", 2)
    try:
        movie = read_movie(source, strict=True)
    except CheckpointError as e:
        return _fail(str(e), 2)
    if movie is None:
        return _fail(f"{source.name} has no recorded history (it was trained before Latent Lab recorded one, "
                     "or without it); train it again to get its movie.", 2)
    data = gif_bytes(movie, size=args.size, fps=args.fps)
    try:
        atomic_write(out, data)
    except OSError as e:
        return _fail(f"Could not write {out}: {e.strerror or 'input/output error'}.", 1)
    print(json.dumps({"gif": str(out), "frames": movie.frames, "bytes": len(data), "size": args.size,
                      "fps": args.fps}))
    return 0
