"""Keep the server's resident memory close to what it uses.

glibc's malloc keeps freed heap memory for reuse instead of returning it, and gives every thread
that allocates at once an arena of its own (up to 8 per core): on a class server every session's
script runs on a thread of its own, and each arena keeps its own freed memory. So, when this
module is imported (app.py, as the server starts, before any session's thread), the number of
arenas is capped at `ARENAS`, and after every script run `release()` hands freed memory back
(`malloc_trim(0)`, well under a millisecond). The figures are in benchmarks/README.md ("server
RSS", bench_class). On a system without glibc (macOS, musl) both do nothing.
"""

from __future__ import annotations

import ctypes

ARENAS = 2
_M_ARENA_MAX = -8  # glibc's mallopt parameter

try:
    _libc = ctypes.CDLL(None)
    _malloc_trim = _libc.malloc_trim
    _libc.mallopt(_M_ARENA_MAX, ARENAS)
except (OSError, AttributeError):  # not glibc
    _malloc_trim = None


def release() -> None:
    if _malloc_trim is not None:
        _malloc_trim(0)
