"""The map worker: a child process that computes t-SNE and UMAP maps for `vae.maps.MapService`.

    python -m vae.mapworker      # reads requests on stdin, writes replies on stdout

Why a process and not a thread: t-SNE and UMAP spend much of their time in Python and in
numba's compiler, both holding the GIL. On a busy app server (Streamlit redrawing pages for
many sessions) a map computed on a thread was measured 5-10x slower than the same map alone.
A process has its own interpreter, never imports torch or Streamlit (numpy and the projection
libraries only), and if it dies (say, out of memory) the server gets a sentence and a new worker.

The protocol is length-prefixed messages: an 8-byte header (JSON length, array length), a JSON
object, and optionally one array in .npy format (never pickled). Requests:
``{"op": "map", "method", "params", "seed"}`` + the codes (N, D) and ``{"op": "warm", "method"}``.
Replies: ``{"type": "progress", "done", "total"}`` (+ the embedding so far, if any), then one
``{"type": "done", "seconds"}`` + the embedding (N, 2), or ``{"type": "error", "message"}``.
The worker exits when its stdin closes or its parent process is gone (the server stopped).
"""

from __future__ import annotations

import io
import json
import os
import signal
import struct
import sys
import time

import numpy as np

_HEADER = struct.Struct("<II")


def send(stream, message: dict, array: np.ndarray | None = None) -> None:
    blob = b""
    if array is not None:
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
        blob = buf.getvalue()
    head = json.dumps(message).encode()
    stream.write(_HEADER.pack(len(head), len(blob)) + head + blob)
    stream.flush()


def _read_exactly(stream, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise EOFError("the other end closed the pipe")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def receive(stream) -> tuple[dict, np.ndarray | None]:
    n_head, n_blob = _HEADER.unpack(_read_exactly(stream, _HEADER.size))
    message = json.loads(_read_exactly(stream, n_head))
    array = np.load(io.BytesIO(_read_exactly(stream, n_blob)), allow_pickle=False) if n_blob else None
    return message, array


def warm(method: str) -> None:
    """Import (and, for UMAP, compile or load from numba's disk cache) what a method needs."""
    from .projection import warm_up_tsne, warm_up_umap

    (warm_up_umap if method == "umap" else warm_up_tsne)()


def serve(requests, replies) -> None:
    from .maps import compute_map

    while True:
        try:
            message, z = receive(requests)
        except EOFError:
            return
        t0 = time.perf_counter()
        try:
            if message["op"] == "warm":
                warm(message["method"])
                send(replies, {"type": "done", "seconds": time.perf_counter() - t0})
                continue

            def progress(done, total, partial):
                send(replies, {"type": "progress", "done": int(done), "total": int(total)}, partial)

            y = compute_map(z, message["method"], message.get("params"), seed=int(message.get("seed", 0)),
                            progress=progress)
            send(replies, {"type": "done", "seconds": time.perf_counter() - t0}, np.asarray(y, np.float32))
        except BrokenPipeError:  # the server is gone
            return
        except Exception as e:  # a bad parameter, NaN codes: the page shows it as a sentence
            send(replies, {"type": "error", "message": f"{type(e).__name__}: {e}"})


def _exit_with_parent(poll_s: float = 0.5) -> None:
    """End this process when the server that started it is gone, even in the middle of a long job
    (a UMAP compile, a t-SNE): its pipe is only read between jobs.

    On Linux the kernel also kills it then (PR_SET_PDEATHSIG), which works while it is stopped:
    the server stops a warming-up worker while another map computes (vae.maps.CAN_PAUSE)."""
    import threading

    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            PR_SET_PDEATHSIG = 1
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # no libc to call: the thread below still ends it (unless stopped)
            pass
        if os.getppid() != parent:  # the server died before that took effect
            os._exit(0)

    def watch():
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent:  # re-parented: the server died or was stopped
                os._exit(0)

    threading.Thread(target=watch, name="latent-lab-parent-watch", daemon=True).start()


# Below the server and the browser: a map may take a little longer, a page never waits for one.
# The UMAP lane's worker sits lower still: its start-up (numba compiling UMAP, ~30 CPU s the first
# time on a machine, ~8 s from the disk cache) and its maps then yield to a t-SNE that someone is
# watching form (measured: a t-SNE asked for while UMAP compiled took 5.2-6.5 s instead of 4-4.6 s).
NICENESS = {"tsne": 5, "umap": 15}


def niceness(lane: str | None) -> int:
    return NICENESS.get(lane or "", NICENESS["tsne"])


def main() -> None:
    _exit_with_parent()
    try:
        os.nice(niceness(os.environ.get("LATENT_LAB_MAP_LANE")))
    except (AttributeError, OSError):  # not on this platform: the maps share the CPU evenly instead
        pass
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a library that prints must not corrupt the protocol
    sys.stdout = sys.stderr
    try:
        serve(sys.stdin.buffer, replies)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
