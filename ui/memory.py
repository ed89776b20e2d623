"""Hand the memory a page run freed back to the system.

glibc's malloc keeps freed heap memory for reuse instead of returning it, so a server's resident
size grows with every page drawn (figures, PNGs, decoded grids) and only shrinks when asked.
app.py asks after every script run: `malloc_trim(0)` takes well under a millisecond and keeps the
server's RSS below 1 GB with every page visited (benchmarks/README.md, "server RSS"). On a system
without glibc (macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes

try:
    _malloc_trim = ctypes.CDLL(None).malloc_trim
except (OSError, AttributeError):  # not glibc
    _malloc_trim = None


def release() -> None:
    if _malloc_trim is not None:
        _malloc_trim(0)
