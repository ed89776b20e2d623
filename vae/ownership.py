"""A model in the library: who may change it, what it may be called, how a list of them is labelled.

    actor = Actor(owner="3f9a…")                     # an opaque owner id (the UI hashes a browser secret)
    may_manage(entry, actor)                          # the rule behind ModelLibrary.can_manage
    clean_name(" my\\tvae\\u202e ")  == "my vae"       # names are plain, one-line text
    labels(entries, viewer_owner="3f9a…")             # {entry id: "my vae · yours · 14:02", ...}

The rules, for one shared classroom server: a bundled model is nobody's to change; a class model
(pinned by the teacher) and a model saved before owners were recorded (owner None) are the
teacher's; any other model is its owner's, and the teacher's. The teacher's pins live in one small
JSON file in the library folder (`ClassModels`). Standard library only: listing needs no torch.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from .fileio import atomic_write
from .untrusted import bounded_json

if TYPE_CHECKING:
    from .config import ModelConfig

MAX_NAME = 100
CLASS_MODELS_FILE = "class-models.json"
CLASS_MODELS_FORMAT = "latent-lab-class-models"
_ID = re.compile(r"^[A-Za-z0-9._-]{1,120}$")  # library ids are file stems we generated


def is_library_id(text) -> bool:
    """Whether `text` has the shape of a library id (what a cookie or a file may name; not that it exists)."""
    return isinstance(text, str) and _ID.fullmatch(text) is not None


@dataclass(frozen=True)
class Actor:
    """Who asks: an opaque owner id (never a secret itself) and whether they are the teacher."""

    owner: str
    teacher: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.owner, str) or not self.owner:
            raise ValueError("An actor needs an owner id: a non-empty text.")
        if not isinstance(self.teacher, bool):
            raise ValueError("An actor's teacher flag must be true or false.")


@dataclass
class Entry:
    """One model in the library (vae.checkpoint.ModelLibrary), as its header describes it (no weights
    loaded): its name as plain text, whose it is, when it was saved, whether it is pinned."""

    id: str  # the file stem; stable and safe
    path: Path
    meta: dict = field(repr=False)
    bundled: bool = False
    fingerprint: str = ""  # weights_fingerprint(path), computed once per version of the file
    class_model: bool = False  # pinned by the teacher (ClassModels)
    mtime: float = 0.0  # the file's, for models saved before `created` was recorded

    @property
    def name(self) -> str:
        return clean_name(self.meta.get("name")) or self.id

    @property
    def owner(self) -> str | None:
        """The opaque id of whoever trained or uploaded it; None for bundled and older models."""
        owner = self.meta.get("owner")
        return owner if isinstance(owner, str) and owner else None

    @property
    def created(self) -> float:
        """When it was saved (unix time): its metadata's `created`, else the file's modification time."""
        t = self.meta.get("created")
        ok = isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t)
        return float(t) if ok else self.mtime

    @property
    def config(self) -> ModelConfig:
        return self.meta["config"]

    @property
    def metrics(self) -> dict:
        return self.meta.get("metrics") or {}


def clean_name(text: object) -> str:
    """A model name as plain one-line text: whitespace of any kind (tabs, newlines, Unicode spaces)
    becomes one space, every other control or format character (Unicode categories C*: zero-width
    characters, bidi overrides such as U+202E, unassigned code points) is dropped, and the result
    is trimmed and cut to 100 characters. Markdown and HTML stay as the literal characters typed."""
    text = "".join(" " if c.isspace() else c for c in str(text or ""))
    text = "".join(c for c in text if not unicodedata.category(c).startswith("C"))
    return " ".join(text.split())[:MAX_NAME].rstrip()


def name_key(text: object) -> str:
    """What two names are compared by: cleaned and case-folded ("My VAE" and "my  vae" are one name)."""
    return clean_name(text).casefold()


def may_manage(entry: Entry, actor: Actor) -> bool:
    """Whether `actor` may rename or delete `entry` (see the module docstring for the rules)."""
    if entry.bundled:
        return False
    if entry.class_model or entry.owner is None:
        return actor.teacher
    return entry.owner == actor.owner or actor.teacher


def refusal(entry: Entry, actor: Actor, verb: str) -> str | None:
    """The sentence that refuses `actor` to `verb` ("rename", "delete") `entry`, or None when allowed."""
    if may_manage(entry, actor):
        return None
    if entry.bundled:
        return f"{entry.name} is a bundled model and cannot be {verb}d."
    if entry.class_model:
        return f"Only the teacher can {verb} a class model."
    if entry.owner is None:
        return f"Only the teacher can {verb} a model saved before models had owners."
    return f"Only whoever trained or uploaded this model, or the teacher, can {verb} it."


def reserved_names(entries: Iterable[Entry], skip: str | None = None) -> dict[str, str]:
    """Names no other model may take, by name_key: every bundled model's and class model's (but `skip`'s)."""
    return {name_key(e.name): "a bundled model" if e.bundled else "a class model"
            for e in entries if (e.bundled or e.class_model) and e.id != skip}


def name_taken(name: str, entries: Iterable[Entry], skip: str | None = None,
               advice: str = "choose another name") -> str | None:
    """The sentence that refuses `name` (already cleaned) when a bundled or class model has it, else None."""
    if what := reserved_names(entries, skip).get(name_key(name)):
        return f"“{name}” is the name of {what}; {advice}."
    return None


def free_name(name: str, entries: Iterable[Entry]) -> str:
    """`name` (cleaned), or, if a bundled or class model has it, the first of "name (2)", "name (3)", …
    that none has: a training or an upload is never lost over its name."""
    reserved = reserved_names(entries)
    candidate, n = name, 1
    while name_key(candidate) in reserved:
        n += 1
        suffix = f" ({n})"
        candidate = name[:MAX_NAME - len(suffix)].rstrip() + suffix
    return candidate


def _when(t: float, now: float, seconds: bool = False) -> str:
    moment = datetime.fromtimestamp(t)
    clock = moment.strftime("%H:%M:%S" if seconds else "%H:%M")
    return clock if moment.date() == datetime.fromtimestamp(now).date() else f"{moment:%Y-%m-%d} {clock}"


def _qualified(e: Entry, viewer_owner: str | None, now: float, seconds: bool) -> str:
    if e.bundled:
        return e.name if e.name.endswith("(bundled)") else f"{e.name} (bundled)"
    if e.class_model:
        return f"{e.name} · class model"
    when = _when(e.created, now, seconds)
    if e.owner is None:
        return f"{e.name} · {when}"
    whose = "yours" if viewer_owner is not None and e.owner == viewer_owner else "a classmate's"
    return f"{e.name} · {whose} · {when}"


def labels(entries: Iterable[Entry], viewer_owner: str | None, now: float | None = None) -> dict[str, str]:
    """A display label per entry id, unique in the list (case-insensitively): the name alone when no
    other entry has it; otherwise the name with whose it is and when it was saved ("my vae · yours ·
    14:02", "my vae · a classmate's · 14:05", "… · class model", "VAE 2-d (bundled)"; the date too when
    not today, seconds where minutes tie, and a number as the last resort). Plain text, never Markdown."""
    entries = list(entries)
    now = time.time() if now is None else now
    by_name: dict[str, list[Entry]] = {}
    for e in entries:
        by_name.setdefault(name_key(e.name), []).append(e)
    out = {e.id: e.name for e in entries}
    for group in by_name.values():
        if len(group) == 1:
            continue
        out.update({e.id: _qualified(e, viewer_owner, now, False) for e in group})
        counts: dict[str, int] = {}
        for e in group:
            counts[name_key(out[e.id])] = counts.get(name_key(out[e.id]), 0) + 1
        out.update({e.id: _qualified(e, viewer_owner, now, True) for e in group if counts[name_key(out[e.id])] > 1})
    seen: dict[str, int] = {}
    for e in entries:  # still the same (one owner, the same second): number them in listing order
        key = name_key(out[e.id])
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            out[e.id] = f"{out[e.id]} ({seen[key]})"
    return out


class ClassModels:
    """The teacher's pinned models: the ids in `<library>/class-models.json`, written atomically and
    read again only when the file changes. A missing or unreadable file pins nothing."""

    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder) / CLASS_MODELS_FILE
        self._key: tuple | None = None
        self._ids: list[str] = []

    def ids(self) -> list[str]:
        """The pinned ids, in the order they were pinned (the caller holds its lock)."""
        try:
            st = self.path.stat()
        except OSError:
            self._key, self._ids = None, []
            return []
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key != self._key:
            self._key, self._ids = key, _read_ids(self.path)
        return list(self._ids)

    def set(self, entry_id: str, pinned: bool) -> list[str]:
        ids = [i for i in self.ids() if i != entry_id] + ([entry_id] if pinned else [])
        data = {"format": CLASS_MODELS_FORMAT, "ids": ids}
        atomic_write(self.path, (json.dumps(data, indent=1) + "\n").encode())
        return ids


def _read_ids(path: Path) -> list[str]:
    try:
        data = bounded_json(path.read_bytes()[:1_000_000])
    except OSError:
        return []
    ids = data.get("ids") if isinstance(data, dict) and data.get("format") == CLASS_MODELS_FORMAT else None
    return [i for i in ids if is_library_id(i)] if isinstance(ids, list) else []
