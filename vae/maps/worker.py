"""The map worker: a child process that computes t-SNE and UMAP maps for `vae.maps.service`.

    python -m vae.maps.worker FD LIFELINE_FD    # started by WorkerProcess, never by hand

Why a process and not a thread: t-SNE and UMAP spend much of their time in Python and in
numba's compiler, both holding the GIL. On a busy app server (Streamlit redrawing pages for
many sessions) a map computed on a thread runs several times slower than the same map alone.
A process has its own interpreter, never imports torch or Streamlit (numpy and the projection
libraries only), runs below the server's CPU priority, and if it dies (say, out of memory) the
server gets a sentence and a new worker.

The protocol runs over a `multiprocessing.connection.Connection` (a socket pair) with
`send_bytes` / `recv_bytes` only, so nothing is ever unpickled: each message is a JSON object,
followed by one array in .npy format (`allow_pickle=False`) when the object says `"array": true`.
Requests: ``{"op": "map", "method", "params", "seed"}`` + the codes (N, D), and
``{"op": "warm", "method"}``. Replies: ``{"type": "progress", "done", "total"}`` (+ the
embedding so far, if any), then one ``{"type": "done", "seconds"}`` (+ the embedding (N, 2)),
or ``{"type": "error", "message"}``.

The worker ends when its server does: between requests its connection reads end-of-file, and
during one (a long t-SNE, UMAP's first compile) a thread blocked on the lifeline pipe, whose
other end only the server holds, wakes when the kernel closes that end.
"""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import time
from multiprocessing.connection import Connection

import numpy as np

# Below the server and the browser: a map may take a little longer, a page never waits for one.
# The UMAP lane's worker sits lower still: its start-up (numba compiling UMAP, the first time on
# a machine) and its maps then yield to a t-SNE that someone is watching form.
NICENESS = {"tsne": 5, "umap": 15}


def send(conn: Connection, message: dict, array: np.ndarray | None = None) -> None:
    conn.send_bytes(json.dumps({**message, "array": array is not None}).encode())
    if array is not None:
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
        conn.send_bytes(buf.getbuffer())


def receive(conn: Connection) -> tuple[dict, np.ndarray | None]:
    """One message and its array (or None). EOFError when the other end has closed."""
    message = json.loads(conn.recv_bytes())
    has_array = message.pop("array", False)
    array = np.load(io.BytesIO(conn.recv_bytes()), allow_pickle=False) if has_array else None
    return message, array


def serve(conn: Connection) -> None:
    from .projection import compute_map, warm

    while True:
        try:
            message, z = receive(conn)
        except EOFError:
            return
        t0 = time.perf_counter()
        try:
            if message["op"] == "warm":
                warm(message["method"])
                send(conn, {"type": "done", "seconds": time.perf_counter() - t0})
                continue

            def progress(done, total, partial):
                send(conn, {"type": "progress", "done": int(done), "total": int(total)}, partial)

            y = compute_map(z, message["method"], message.get("params"), seed=int(message.get("seed", 0)),
                            progress=progress)
            send(conn, {"type": "done", "seconds": time.perf_counter() - t0}, np.asarray(y, np.float32))
        except OSError:  # the server is gone (a broken or reset connection)
            return
        except Exception as e:  # a bad parameter, NaN codes: the page shows it as a sentence
            send(conn, {"type": "error", "message": f"{type(e).__name__}: {e}"})


def _exit_with_server(lifeline_fd: int) -> None:
    """End this process, even mid-map, when the server is gone: the lifeline pipe's write end lives
    only in the server, so this read returns (end-of-file) exactly when the server has exited."""
    def watch():
        os.read(lifeline_fd, 1)
        os._exit(0)

    threading.Thread(target=watch, name="latent-lab-lifeline", daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    fd, lifeline_fd = (int(a) for a in (argv if argv is not None else sys.argv[1:]))
    _exit_with_server(lifeline_fd)
    try:
        os.nice(NICENESS.get(os.environ.get("LATENT_LAB_MAP_LANE", ""), NICENESS["tsne"]))
    except (AttributeError, OSError):  # not on this platform: the maps share the CPU evenly instead
        pass
    try:
        serve(Connection(fd))
    except KeyboardInterrupt:  # Ctrl-C in the server's terminal reaches its workers too
        pass


if __name__ == "__main__":
    main()
