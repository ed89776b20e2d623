"""Lesson links: every page's view lives in its address, so a teacher can hand the class a link.

    link = links.Link("map")          # under the title: the Copy link button and a slot for notices
    link.field("method", "map_method_plane", links.choice(options), default)   # before the widget
    method = st.radio("Map", options, key="map_method_plane")
    link.publish({"method": method})  # writes ?model=…&method=… (and shows what a link got wrong)

A page adopts its address once, when it is entered: opened from a link, reloaded, reached by
"Send to …" (st.switch_page with query parameters) or, with an address that names nothing of the
page, back from another page through the sidebar, when it comes back as it was left. After that
the widgets lead and every run writes their values back, so the address always shows the view.
Bad or stale values (garbage numbers, an index out of range, a method this model lacks) fall back
to the default with a short notice; a value restored from the session falls back silently. The
active model is `?model=` on every page (ui.state.active_id). Nothing about the user goes in an
address: only the names in PARAMS, whatever else a link carries is dropped.

The parsers are pure functions: text in, a value out or ValueError with a short reason.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import streamlit as st

from ui import state
from ui.components import component
from ui.text import plain

# What each page keeps in its address, besides ?model=.
PARAMS: dict[str, tuple[str, ...]] = {
    "home": (),
    "map": ("method", "perplexity", "n_neighbors", "min_dist", "layer", "kept", "picks"),
    "draw": ("method",),
    "sliders": ("start", "digit", "class", "seed", "dims", "z", "picks"),
    "interpolate": ("mode", "from", "to", "end", "steps", "path", "picks"),
    "compare": ("pair", "left", "right", "region", "half", "sds", "grid", "seed", "from", "to", "path"),
    "gallery": ("seed", "count", "first", "worst"),
    "fewlabels": ("method", "k", "draw"),
    "denoise": ("noise", "level", "denoiser", "digits"),
    "train": (),
}
MAX_PICKS = 500  # as many as ui.state.set_picks keeps
READABLE = 200  # picks up to this many characters are written as a list ("3,17,20-25"), longer ones packed
_WROTE = "links_wrote"  # session_state: (page, params) last written to the address
_LAST = "links_last"  # session_state: {page: params}, each page's last address, for coming back

_INT = re.compile(r"[+-]?[0-9]{1,15}")
_FLOAT = re.compile(r"[+-]?([0-9]{1,12}(\.[0-9]{0,12})?|\.[0-9]{1,12})([eE][+-]?[0-9]{1,3})?")
_RANGE = re.compile(r"([0-9]{1,9})(?:-([0-9]{1,9}))?")
_PACKED = re.compile(r"~[A-Za-z0-9_-]*")


def short(text: str, n: int = 24) -> str:
    text = str(text)
    return text if len(text) <= n else text[:n] + "…"


# --- parsers (pure) ---------------------------------------------------------------------------------

def parse_int(text: str, lo: int, hi: int, step: int = 1) -> int:
    t = text.strip()
    if not _INT.fullmatch(t):
        raise ValueError(f"“{short(t)}” is not a whole number")
    v = int(t)
    if not lo <= v <= hi:
        raise ValueError(f"{v} is not between {lo:,} and {hi:,}")
    if (v - lo) % step:
        raise ValueError(f"{v} is not one of {lo}, {lo + step}, {lo + 2 * step}, …")
    return v


def parse_float(text: str, lo: float, hi: float) -> float:
    t = text.strip()
    if not _FLOAT.fullmatch(t) or not math.isfinite(v := float(t)):
        raise ValueError(f"“{short(t)}” is not a number")
    if not lo <= v <= hi:
        raise ValueError(f"{t} is not between {lo:g} and {hi:g}")
    return v


def parse_choice(text: str, options: Sequence) -> Any:
    """One of `options`: a name (any case) or, for numbers, the same number ("30" or "30.0" for 30)."""
    t = text.strip()
    for o in options:
        if isinstance(o, str) and t.lower() == o.lower():
            return o
        if isinstance(o, (int, float)) and _FLOAT.fullmatch(t) and abs(float(t) - o) < 1e-9:
            return o
    named = ", ".join(str(o) for o in list(options)[:8]) + (", …" if len(options) > 8 else "")
    raise ValueError(f"“{short(t)}” is not one of {named}")


def parse_ints(text: str, lo: int, hi: int, max_len: int) -> list[int]:
    """A comma-separated list of distinct whole numbers in [lo, hi], at least one, at most `max_len`."""
    parts = [p for p in text.split(",") if p.strip()]
    if not parts or len(parts) > max_len:
        raise ValueError(f"needs 1 to {max_len} numbers")
    values = [parse_int(p, lo, hi) for p in parts]
    if len(set(values)) < len(values):
        raise ValueError("a number is there twice")
    return values


def parse_floats(text: str, bounds: Sequence[tuple[float, float]]) -> list[float]:
    """One number per (lo, hi) of `bounds`, comma-separated, each inside its bounds (1e-3 of slack for rounding)."""
    parts = text.split(",")
    if len(parts) != len(bounds):
        raise ValueError(f"needs {len(bounds)} numbers, not {len(parts)}")
    return [parse_float(p, lo - 1e-3, hi + 1e-3) for p, (lo, hi) in zip(parts, bounds)]


def choice(options: Sequence) -> Callable[[str], Any]:
    return lambda t: parse_choice(t, options)


def integer(lo: int, hi: int, step: int = 1) -> Callable[[str], int]:
    return lambda t: parse_int(t, lo, hi, step)


def flag() -> Callable[[str], bool]:
    """A toggle's parser: "1" is on, "0" off (the address writes a toggle only when it is on)."""
    return lambda t: bool(parse_int(t, 0, 1))


def number(lo: float, hi: float, step: float | None = None) -> Callable[[str], float]:
    """A float parser; with `step`, the value is snapped to the nearest step from `lo` (a slider's grid)."""
    def parse(t: str) -> float:
        v = parse_float(t, lo, hi)
        return v if step is None else round(lo + round((v - lo) / step) * step, 6)
    return parse


# --- formats (pure) ---------------------------------------------------------------------------------

def fmt_float(v: float, digits: int = 3) -> str:
    s = f"{float(v):.{digits}f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def encode_picks(indices: Iterable[int]) -> str:
    """Picked test digits as text: sorted, runs as ranges ("3,17,20-25"); when that is long, packed
    ("~" + base64url of the gaps between them as varints: about 1.4 characters a pick)."""
    s = sorted({int(i) for i in indices})
    parts, k = [], 0
    while k < len(s):
        j = k
        while j + 1 < len(s) and s[j + 1] == s[j] + 1:
            j += 1
        parts += [f"{s[k]}-{s[j]}"] if j - k >= 2 else [str(v) for v in s[k:j + 1]]
        k = j + 1
    text = ",".join(parts)
    if len(text) <= READABLE:
        return text
    out, prev = bytearray(), -1
    for v in s:
        gap = v - prev - 1
        while True:
            byte, gap = gap & 0x7F, gap >> 7
            out.append(byte | (0x80 if gap else 0))
            if not gap:
                break
        prev = v
    return "~" + base64.urlsafe_b64encode(bytes(out)).decode("ascii").rstrip("=")


def decode_picks(text: str, n: int, limit: int = MAX_PICKS) -> tuple[list[int], str | None]:
    """-> (test-set indices in [0, n), sorted, at most `limit`; a sentence on what was left out, or None).
    Raises ValueError for text that is neither form of encode_picks."""
    t = text.strip()
    if len(t) > 20_000:
        raise ValueError("is too long")
    values, outside = set(), 0
    if t.startswith("~"):
        if not _PACKED.fullmatch(t):
            raise ValueError(f"“{short(t)}” is not a packed list of picks")
        raw = base64.urlsafe_b64decode(t[1:] + "=" * (-len(t[1:]) % 4))
        prev, gap, shift = -1, 0, 0
        for byte in raw:
            gap |= (byte & 0x7F) << shift
            shift += 7
            if shift > 35:
                raise ValueError("has a gap too large")
            if not byte & 0x80:
                prev, gap, shift = prev + gap + 1, 0, 0
                if prev >= n:
                    outside += 1
                else:
                    values.add(prev)
        if shift:
            raise ValueError("ends in the middle of a number")
    elif t:
        for part in t.split(","):
            m = _RANGE.fullmatch(part.strip())
            if not m:
                raise ValueError(f"“{short(part.strip())}” is not a test digit number or a range like 20-25")
            lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            if hi < lo:
                raise ValueError(f"the range {lo}-{hi} runs backwards")
            outside += max(0, hi - max(lo, n) + 1)
            values.update(range(lo, min(hi, n - 1) + 1))
    kept = sorted(values)
    notes = [f"{outside:,} not among the test digits (0 to {n - 1:,}) left out"] if outside else []
    if len(kept) > limit:
        notes.append(f"only the first {limit} of {len(kept):,} kept")
    return kept[:limit], "; ".join(notes) or None


def _text(name: str, value) -> str:
    if name == "picks":
        return encode_picks(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return ",".join(_text("", v) for v in value)
    if isinstance(value, float):
        return fmt_float(value)
    return str(int(value))


def _texts(page: str, values: dict) -> dict[str, str | None]:
    """The page's values as the address writes them; None for a value left out (None, no picks)."""
    unknown = set(values) - set(PARAMS[page])
    if unknown:
        raise KeyError(f"{page} has no address parameter {sorted(unknown)}")
    return {k: None if v is None or (k == "picks" and not v) else _text(k, v) for k, v in values.items()}


def query(page: str, values: dict) -> dict[str, str]:
    """The address's parameters for a view of `page`: the active model first, then the page's values
    (None and an empty pick left out)."""
    model = state.active_id()
    return ({"model": model} if model else {}) | {k: v for k, v in _texts(page, values).items() if v is not None}


def last(page: str) -> dict[str, str]:
    """The address `page` last had in this session (its parameters as text, without ?model=), or {}."""
    return dict(st.session_state.get(_LAST, {}).get(page, {}))


def go(page_path: str, values: dict) -> None:
    """Open another page on the view `values` describes (as a lesson link to it would)."""
    st.switch_page(page_path, query_params=query(_page_of(page_path), values))


def _page_of(page_path: str) -> str:
    return page_path.rsplit("/", 1)[-1].removesuffix(".py")


# --- the page's side --------------------------------------------------------------------------------

_COPY = component(
    "latent_lab.copy_link", "links",
    html='<div class="ll-copy"><button type="button" class="ll-copy-btn" data-testid="ll-copy-link" '
         'title="Copy the address of this view, to hand it to others">Copy link</button>'
         '<span class="ll-copy-msg" role="status" aria-live="polite"></span>'
         '<input class="ll-copy-url" type="text" readonly hidden aria-label="The address of this view"></div>')


class Link:
    """One page's address. Made under the page's title, where it draws the Copy link button (it copies
    the browser's address, which every run keeps up to date) and keeps room for a notice about values a
    link got wrong."""

    def __init__(self, page: str):
        self.page = page
        url = {k: v for k, v in st.query_params.to_dict().items() if k in PARAMS[page]}
        wrote = st.session_state.get(_WROTE)
        self.entered = wrote != (page, url)
        last = st.session_state.get(_LAST, {}).get(page, {})
        # Back from another page (the sidebar's links carry no parameters): the page as it was left; picks
        # are the session's, which other pages may have changed meanwhile.
        self.incoming = url or {k: v for k, v in last.items() if k != "picks"}
        self.from_link = self.entered and bool(url)
        # What the address says until this run publishes its own values: a run publishes as it goes
        # (it may stop half-way), and a value it has not reached yet keeps its last run's.
        self.params: dict[str, str] = {} if self.entered else dict(wrote[1])
        self.problems: list[str] = []
        _COPY(key=f"{page}_copy_link", width="content")
        self._notice = st.empty()

    def _adopt(self, name: str, parse: Callable[[str], Any], default):
        raw = self.incoming.get(name)
        if raw is None:
            return default
        try:
            return parse(raw)
        except ValueError as e:
            self.problem(name, str(e))
            return default

    def field(self, name: str, key: str, parse: Callable[[str], Any], default, options=None) -> str:
        """Give the widget `key` its value before it is drawn: on entering the page the address's (or the
        default), later the widget's own (the default where it has none, or one no longer in `options`)."""
        if self.entered:
            st.session_state[key] = self._adopt(name, parse, default)
        elif key not in st.session_state or (options is not None and st.session_state[key] not in options):
            st.session_state[key] = default
        return key

    def value(self, name: str, parse: Callable[[str], Any], default=None):
        """A value the page keeps itself (not a widget's): the address's on entering the page, else None."""
        return self._adopt(name, parse, default) if self.entered else None

    def picks(self, n: int) -> None:
        """On entering the page from an address with picks: make them the session's picks."""
        raw = self.incoming.get("picks") if self.entered else None
        if raw is None:
            return
        try:
            kept, note = decode_picks(raw, n)
        except ValueError as e:
            kept, note = [], str(e)
        state.set_picks(kept)
        if note:
            self.problem("picks", note)

    def problem(self, name: str, reason: str) -> None:
        if self.from_link:  # a view restored from this session falls back silently
            self.problems.append(f"{name}: {reason}")

    def publish(self, values: dict) -> None:
        """Write these values of the view into the address (None: leave it out), and show the notice about
        what the link got wrong, if anything."""
        for k, v in _texts(self.page, values).items():
            if v is None:
                self.params.pop(k, None)
            else:
                self.params[k] = v
        st.session_state[_WROTE] = (self.page, dict(self.params))
        st.session_state.setdefault(_LAST, {})[self.page] = dict(self.params)
        model = state.active_id()
        full = ({"model": model} if model else {}) | self.params
        if st.query_params.to_dict() != full:
            st.query_params.from_dict(full)
        if self.problems:
            self._notice.info(plain("Parts of this link could not be used, so their defaults are shown: "
                                    + "; ".join(self.problems) + "."), icon=":material/link_off:")
