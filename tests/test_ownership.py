"""The library on a shared server: who may rename or delete which model (owner, another student, the
teacher, bundled, class model, legacy), uploads that claim an owner, class models pinned in one file,
names as plain text with reserved names, and labels that tell same-named models apart."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime

import pytest

from vae.checkpoint import CheckpointError, ModelLibrary, checkpoint_bytes, save_checkpoint
from vae.ownership import Actor
from vae.config import ModelConfig
from vae.models import build_model
from vae.ownership import CLASS_MODELS_FILE, Entry, clean_name, labels

ALICE, BOB = Actor("alice-hash"), Actor("bob-hash")
TEACHER = Actor("teacher-hash", teacher=True)
pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def model():
    return build_model(ModelConfig(kind="vae", latent_dim=2, hidden=(16,)), seed=0)


@pytest.fixture
def lib(tmp_path, model):
    bundled = tmp_path / "bundled"
    bundled.mkdir()
    save_checkpoint(bundled / "vae-2d.safetensors", model, name="VAE 2-d (bundled)")
    return ModelLibrary(tmp_path / "models", bundled)


@pytest.fixture
def kinds(lib, model) -> dict[str, Entry]:
    """One model of each kind: Alice's, a class model (Alice's, pinned), a legacy one, the bundled one."""
    mine = lib.save(model, name="mine", owner=ALICE.owner)
    pinned = lib.set_class_model(lib.save(model, name="pinned", owner=ALICE.owner).id, True, TEACHER)
    legacy = save_checkpoint(lib.user_dir / "legacy-0000aaaa.safetensors", model, name="legacy")  # before owners
    os.utime(legacy, (time.time() - 3600, time.time() - 3600))  # saved an hour ago
    return {"own": mine, "class": pinned, "legacy": lib.get("legacy-0000aaaa"), "bundled": lib.get("vae-2d")}


# ------------------------------------------------------------------ who may manage what

MATRIX = {  # kind -> (Alice, who owns the owned ones; Bob, another student; the teacher)
    "own": (True, False, True),
    "class": (False, False, True),
    "legacy": (False, False, True),
    "bundled": (False, False, False),
}


@pytest.mark.parametrize("kind", MATRIX)
def test_the_ownership_matrix(lib, kinds, kind):
    entry = kinds[kind]
    assert tuple(lib.can_manage(entry, a) for a in (ALICE, BOB, TEACHER)) == MATRIX[kind]


@pytest.mark.parametrize("kind", MATRIX)
@pytest.mark.parametrize("who", [0, 1, 2], ids=["owner", "other student", "teacher"])
def test_rename_and_delete_follow_the_matrix(lib, kinds, kind, who):
    actor, entry = (ALICE, BOB, TEACHER)[who], kinds[kind]
    before = entry.path.read_bytes()
    if MATRIX[kind][who]:
        assert lib.rename(entry.id, "renamed", actor).name == "renamed"
        lib.delete(entry.id, actor)
        assert not entry.path.exists() and entry.id not in {e.id for e in lib.entries()}
        return
    for call in (lambda: lib.rename(entry.id, "renamed", actor), lambda: lib.delete(entry.id, actor)):
        with pytest.raises(CheckpointError) as e:
            call()
        msg = str(e.value)
        assert "\n" not in msg and msg.endswith(".") and len(msg) < 120, msg
        assert ("bundled" if kind == "bundled" else "teacher") in msg
    assert entry.path.read_bytes() == before  # nothing changed


def test_the_refusal_names_who_may(lib, kinds):
    with pytest.raises(CheckpointError, match="^Only whoever trained or uploaded this model, or the teacher, can "
                                              "rename it.$"):
        lib.rename(kinds["own"].id, "x", BOB)
    with pytest.raises(CheckpointError, match="^Only the teacher can delete a class model.$"):
        lib.delete(kinds["class"].id, ALICE)


def test_saves_record_owner_and_time(lib, model):
    before = time.time()
    entry = lib.save(model, name="m", owner=ALICE.owner, created=0.0, dataset="mnist")
    assert entry.owner == ALICE.owner and before <= entry.created <= time.time()  # a caller cannot backdate
    assert not entry.class_model and not entry.bundled and entry.meta["dataset"] == "mnist"
    assert lib.save(model, name="n").owner is None  # the command line: the teacher's
    with pytest.raises(CheckpointError, match="owner"):
        lib.save(model, name="n", owner="")


def test_an_upload_is_owned_by_its_uploader(lib, model):
    data = checkpoint_bytes(model, name="claims", owner=BOB.owner, created=1.0, class_model=True)
    entry = lib.import_bytes(data, "claims.safetensors", owner=ALICE.owner)
    assert entry.owner == ALICE.owner and entry.created > 1.0 and not entry.class_model
    assert "class_model" not in entry.meta
    assert lib.can_manage(entry, ALICE) and not lib.can_manage(entry, BOB)
    assert lib.import_bytes(data, "claims.safetensors").owner is None  # an upload with no uploader: the teacher's


def test_legacy_files_list_with_no_owner_and_their_file_time(lib, kinds):
    legacy = kinds["legacy"]
    assert legacy.owner is None and legacy.created == pytest.approx(legacy.path.stat().st_mtime)


# ------------------------------------------------------------------ class models

def test_class_models_are_the_teachers_to_pin(lib, kinds, model):
    own = kinds["own"]
    for actor in (ALICE, BOB):
        with pytest.raises(CheckpointError, match="Only the teacher"):
            lib.set_class_model(own.id, True, actor)
    with pytest.raises(CheckpointError, match="bundled"):
        lib.set_class_model("vae-2d", True, TEACHER)
    assert not lib.get(own.id).class_model
    assert lib.set_class_model(own.id, True, TEACHER).class_model
    stored = json.loads((lib.user_dir / CLASS_MODELS_FILE).read_text())
    assert stored["ids"] == [kinds["class"].id, own.id]
    assert not lib.set_class_model(own.id, False, TEACHER).class_model
    assert lib.can_manage(lib.get(own.id), ALICE)  # unpinned, it is Alice's again


def test_listing_order_bundled_then_class_models_then_newest(lib, kinds, model):
    newer = lib.save(model, name="newer", owner=BOB.owner)
    assert [e.id for e in lib.entries()] == ["vae-2d", kinds["class"].id, newer.id, kinds["own"].id,
                                             kinds["legacy"].id]
    assert [e.class_model for e in lib.entries()] == [False, True, False, False, False]


def test_a_deleted_class_model_is_unpinned(lib, kinds):
    lib.delete(kinds["class"].id, TEACHER)
    assert json.loads((lib.user_dir / CLASS_MODELS_FILE).read_text())["ids"] == []


@pytest.mark.parametrize("content", [b"", b"not json", b'{"ids": ["x"]}', b"[" * 100000,
                                     b'{"format": "latent-lab-class-models", "ids": ["../../etc", 3]}'])
def test_a_broken_class_models_file_pins_nothing(lib, kinds, content):
    (lib.user_dir / CLASS_MODELS_FILE).write_bytes(content)
    assert not any(e.class_model for e in lib.entries())


def test_a_pin_cannot_make_two_class_models_of_one_name(lib, kinds, model):
    twin = lib.save(model, name="PINNED", owner=BOB.owner)  # "pinned" is a class model's name
    assert twin.name == "PINNED (2)"
    lib.rename(twin.id, "other", BOB)
    save_checkpoint(lib.user_dir / "legacy-pinned-0000bbbb.safetensors", model, name="Pinned")  # older file
    with pytest.raises(CheckpointError, match="class model; rename this model first"):
        lib.set_class_model("legacy-pinned-0000bbbb", True, TEACHER)


# ------------------------------------------------------------------ names

@pytest.mark.parametrize("raw, clean", [
    ("  my   vae  ", "my vae"),
    ("my\tvae\nnumber\r\n2", "my vae number 2"),
    ("evil\u202etxt.exe", "eviltxt.exe"),  # a bidi override would draw the rest backwards
    ("a\u200bb\u200dc\ufeffd\u2066e\u2069", "abcde"),  # zero-width and isolate characters
    ("nul\x00and\x1bescape\x7f", "nulandescape"),
    ("\u2028line\u2029para\u00a0nbsp", "line para nbsp"),
    ("![x](http://a)", "![x](http://a)"),  # Markdown stays the literal text that was typed
    ("<b>bold</b> **not bold**", "<b>bold</b> **not bold**"),
    ("ünïcødé 名前 🙂", "ünïcødé 名前 🙂"),
    ("\n\r\t", ""),
    ("x" * 150, "x" * 100),
    (("y" * 99) + " z", "y" * 99),  # cut at 100, then trimmed
    (None, ""),
])
def test_clean_name(raw, clean):
    assert clean_name(raw) == clean
    assert clean_name(clean) == clean  # idempotent


def test_names_are_cleaned_on_save_upload_and_rename(lib, model):
    entry = lib.save(model, name="a\u202eb\nc", owner=ALICE.owner)
    assert entry.name == "ab c" and entry.meta["name"] == "ab c"
    assert lib.rename(entry.id, " d\u200b e\t", ALICE).name == "d e"
    up = lib.import_bytes(checkpoint_bytes(model, name="\u202eup\x00load"), "x.safetensors", owner=ALICE.owner)
    assert up.name == "upload"
    bare = lib.import_bytes(checkpoint_bytes(model), "my\u202efile .safetensors", owner=ALICE.owner)
    assert bare.name == "myfile"
    with pytest.raises(CheckpointError, match="blank"):
        lib.rename(entry.id, "\u200b\u202e \n", ALICE)


def test_a_name_in_an_old_file_is_shown_clean(lib, model):
    save_checkpoint(lib.user_dir / "old-0000cccc.safetensors", model, name="old\u202e\nname")
    assert lib.get("old-0000cccc").name == "old name"


@pytest.mark.parametrize("taken", ["VAE 2-d (bundled)", "vae 2-D  (BUNDLED)", "pinned", "PINNED\u200b"])
def test_reserved_names(lib, kinds, model, taken):
    own = kinds["own"]
    with pytest.raises(CheckpointError, match="is the name of a (bundled|class) model; choose another name."):
        lib.rename(own.id, taken, ALICE)
    with pytest.raises(CheckpointError, match="choose another name"):
        lib.check_name(taken)
    assert lib.get(own.id).name == "mine"
    saved = lib.save(model, name=taken, owner=BOB.owner)  # a training is never lost over its name
    assert saved.name == clean_name(taken) + " (2)"
    assert lib.save(model, name=taken, owner=BOB.owner).name == clean_name(taken) + " (2)"  # students may share
    uploaded = lib.import_bytes(checkpoint_bytes(model, name=taken), "u.safetensors", owner=BOB.owner)
    assert uploaded.name == clean_name(taken) + " (2)"


def test_a_class_model_keeps_its_own_name_and_a_suffix_fits(lib, kinds, model):
    assert lib.rename(kinds["class"].id, "PINNED", TEACHER).name == "PINNED"  # its own name is no clash
    assert lib.check_name("free name") == "free name"
    long = lib.save(model, name="p" * 100, owner=ALICE.owner)
    lib.set_class_model(long.id, True, TEACHER)
    assert lib.save(model, name="P" * 100).name == "P" * 96 + " (2)"


# ------------------------------------------------------------------ labels

NOW = datetime(2030, 5, 6, 15, 0).timestamp()


def entry(id: str, name: str, owner: str | None = None, at: str = "14:02", *, bundled=False, pinned=False,
          day: int = 6) -> Entry:
    h, m, *s = (int(x) for x in at.split(":"))
    created = datetime(2030, 5, day, h, m, *s).timestamp()
    return Entry(id, None, {"name": name, "owner": owner, "created": created}, bundled, class_model=pinned)


def test_labels_tell_same_named_models_apart():
    entries = [entry("b", "VAE 2-d (bundled)", bundled=True), entry("c", "shared", pinned=True),
               entry("u", "unique", "alice"), entry("m1", "my vae", "alice"),
               entry("m2", "My VAE", "bob", "14:05"), entry("m3", "my vae", None, "09:30", day=4),
               entry("m4", "shared", "alice", "14:10")]
    assert labels(entries, viewer_owner="alice", now=NOW) == {
        "b": "VAE 2-d (bundled)", "c": "shared · class model", "u": "unique",
        "m1": "my vae · yours · 14:02", "m2": "My VAE · a classmate's · 14:05", "m3": "my vae · 2030-05-04 09:30",
        "m4": "shared · yours · 14:10"}
    seen_by_bob = labels(entries, viewer_owner="bob", now=NOW)
    assert seen_by_bob["m1"] == "my vae · a classmate's · 14:02" and seen_by_bob["m2"] == "My VAE · yours · 14:05"
    assert labels(entries, viewer_owner=None, now=NOW)["m1"] == "my vae · a classmate's · 14:02"


def test_labels_are_unique_even_within_one_minute():
    entries = [entry("a", "twin", "alice", "14:02:05"), entry("b", "twin", "alice", "14:02:40"),
               entry("c", "twin", "alice", "14:02:40"), entry("d", "VAE 2-d", bundled=True),
               entry("e", "vae 2-d", None, "14:00")]
    got = labels(entries, viewer_owner="alice", now=NOW)
    assert got == {"a": "twin · yours · 14:02:05", "b": "twin · yours · 14:02:40",
                   "c": "twin · yours · 14:02:40 (2)", "d": "VAE 2-d (bundled)", "e": "vae 2-d · 14:00"}
    assert len({v.casefold() for v in got.values()}) == len(got)
    assert ModelLibrary.labels(entries, "alice", now=NOW) == got
    assert labels([], "alice") == {}


def test_labels_of_a_real_listing(lib, kinds, model):
    twin = lib.save(model, name="mine", owner=BOB.owner)
    got = lib.labels(lib.entries(), BOB.owner)
    assert got[twin.id].startswith("mine · yours · ") and got[kinds["own"].id].startswith("mine · a classmate's · ")
    assert got["vae-2d"] == "VAE 2-d (bundled)" and got[kinds["class"].id] == "pinned"


def test_an_actor_needs_an_owner_id():
    with pytest.raises(ValueError, match="owner id"):
        Actor("")
    with pytest.raises(ValueError, match="teacher"):
        Actor("x", teacher="yes")
