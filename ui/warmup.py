"""Import torch and the rest in the background, once per server, from the moment it starts.

The first page needs no torch (ui.state draws it from the library's metadata and a stored
picture), and `import torch` takes about 1.7 s on a 2-core machine. app.py's `st.App` lifespan
hook calls `start()` when the server starts, so the import runs while the browser loads
Streamlit's front end (about a second in which the server is otherwise idle); app.py calls it
again after every page (a no-op once started), which covers AppTest and any server that did not
run the hook. A page that needs torch before the thread is done waits for that import, not for
a second one (Python's per-module import lock).

Importing this module (app.py does, before anything imports torch) also makes OpenMP's idle threads
sleep instead of spin (`OMP_WAIT_POLICY=PASSIVE`, unless the environment says otherwise): libgomp reads it
when torch loads it.

Nothing here touches Streamlit: it runs before Streamlit's runtime exists.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import threading
import time

# A waiting OpenMP thread spins (libgomp: 300,000 rounds) before it sleeps. On a class server each session's
# torch call shares the 2 cores with the other sessions, the trainings and the map workers, and the spinning
# takes the time slices the working threads need: scoring 2,000 digits under a load average of 13-19 took
# 0.61-0.85 CPU s (1.3-2.3 s) spinning, 0.26-0.32 CPU s (0.7-0.9 s) sleeping (benchmarks/README.md). The
# queue's trainings wait passively for the same reason (vae.jobs).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# First torch and the core (every page but the first needs them, the map page nothing more);
# then, a few seconds later so as not to slow a page opened at once, pandas and plotly for the
# pages with charts (which import pandas themselves: plotly reads it from sys.modules without
# waiting for an import in progress) and the classifier.
IMPORTS = ("torch", "vae.models", "vae.data", "vae.latent", "vae.checkpoint", "vae.maps.service")
LATER_IMPORTS = ("pandas", "plotly.graph_objects", "vae.classifier")
LATER_DELAY_S = 3.0
# While the import runs, the server's own thread (sending the front end's files, running the
# first page) gets the GIL within 0.5 ms instead of Python's default 5 ms.
SWITCH_INTERVAL_S = 0.0005
THREAD_NAME = "latent-lab-imports"

_lock = threading.Lock()
_thread: threading.Thread | None = None


def _import(names) -> bool:
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # the page that needs it imports it again and shows the error
            return False
    return True


def _run(imports, later, delay_s: float) -> None:
    default = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        ok = _import(imports)
    finally:
        sys.setswitchinterval(default)
    if ok and later:
        time.sleep(delay_s)
        _import(later)


def start() -> threading.Thread:
    """Start the background import (once per process); -> its thread."""
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_run, args=(IMPORTS, LATER_IMPORTS, LATER_DELAY_S),
                                       name=THREAD_NAME, daemon=True)
            _thread.start()
        return _thread


@contextlib.asynccontextmanager
async def lifespan(_app):
    """st.App lifespan hook: start the import as the server starts."""
    start()
    yield
