"""The hover card decodes the point under the cursor, in the browser (ui/map_hover.js, ui/hover_card.py).

Harness tests: the card's module, with ui/nets.js inlined as Streamlit gets it, mounted on a blank page
with the bytes ui/hover_card.py sends for the bundled models, and hover events as ui/map_canvas.js
dispatches them. They check what the card draws against Python: the code under the cursor (native and
PCA exactly, t-SNE/UMAP as vae.maps.neighbours.approx_codes), the decoded pixels (vae.latent.decode) and
the digit-likeness score (vae.classifier.digit_confidence), linked panes of an AE and a VAE, and that
nothing is decoded where a page sent no spec.

App tests (they need the pages to pass their specs, as ui/hover_card.py's docstring shows): the Latent
map of the bundled 2-d AE (?model=ae-2d) in a real server, the mouse over empty space: the card shows a
decoded image there; AE vs VAE: hovering the right map shows the same point decoded by both models.

Screenshots: test-artifacts/hover-*.png.
"""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

import numpy as np
import pytest

from tests.e2e.conftest import ARTIFACTS, assert_no_exception, shot, wait_for_app
from ui.components import module_source
from vae.paths import BUNDLED_MODELS

pytestmark = pytest.mark.skipif(not (BUNDLED_MODELS / "ae-2d.safetensors").exists(), reason="no bundled models")
CARD = "#latent-lab-hover-card"

MOUNT = """async ([src, sprite, clf64, maps64, canvases]) => {
  const url = URL.createObjectURL(new Blob([src], {type: "text/javascript"}));
  const mod = await import(url);
  const bytes = s => Uint8Array.from(atob(s), c => c.charCodeAt(0));
  window.__latentLabMaps = {};
  for (const [key, id] of Object.entries(canvases)) window.__latentLabMaps[key] = {state: {d: {id}}};
  document.body.style.cssText = "margin:0;background:#f4f4f8;font-family:sans-serif";
  const mount = data => {
    const el = document.createElement("div");
    el.innerHTML = '<div class="ll-status"></div>';
    document.body.appendChild(el);
    return mod.default({data, parentElement: el, setTriggerValue: (name, v) => { window.__wanted = v; }});
  };
  mount(JSON.parse(sprite));
  if (clf64) mount(bytes(clf64));
  if (maps64) window.__unmountMaps = mount(bytes(maps64));
  window.__hover = mod;
  return document.body.innerText;
}"""

# Twice at the same place: where the classifier is slow, the card scores every other frame only.
HOVER = """async (detail) => {
  for (let k = 0; k < 2; k++) {
    window.dispatchEvent(new CustomEvent("latent-lab-map-hover", {detail}));
    await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  }
  const S = window.__latentLabHover, card = document.getElementById("latent-lab-hover-card");
  if (!card) return {display: "none", panes: []};
  const panes = [...card.querySelectorAll(".llh-code")].map(f => {
    const d = f.querySelector("canvas").getContext("2d").getImageData(0, 0, 28, 28).data;
    const gray = []; for (let i = 0; i < d.length; i += 4) gray.push(d[i]);
    return {key: f.dataset.map, gray, score: f.dataset.score === undefined ? null : Number(f.dataset.score),
            label: f.dataset.label === undefined ? null : Number(f.dataset.label),
            name: f.querySelector(".llh-name").textContent, scoreText: f.querySelector(".llh-score").textContent,
            here: f.classList.contains("llh-here")};
  });
  return {display: card.style.display, mode: card.dataset.mode || "", frames: Number(card.dataset.frames || 0),
          decodeMs: Number(card.dataset.decodeMs), scoreMs: Number(card.dataset.scoreMs),
          note: card.querySelector(".llh-note").textContent, last: S.last || [], panes,
          dotShown: card.querySelector(".llh-dot").style.display !== "none", text: card.innerText};
}"""


def b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def bundled():
    """The bundled 2-d pair and 16-d VAE as the pages hold them: Active, test codes."""
    from ui.state import Active
    from vae.assets import test_set
    from vae.checkpoint import load_checkpoint
    from vae.latent import encode

    x = test_set("mnist").x_test
    out = {}
    for name in ("ae-2d", "vae-2d", "vae-16d"):
        model, meta = load_checkpoint(BUNDLED_MODELS / f"{name}.safetensors")
        model.requires_grad_(False)
        out[name] = (Active(SimpleNamespace(name=name, id=name), model, meta, f"{name}-fingerprint"), encode(model, x))
    return out


@pytest.fixture(scope="module")
def clf():
    from vae.classifier import load_classifier

    return load_classifier()


@pytest.fixture(scope="module")
def sprite():
    from vae.assets import test_set
    from vae.images import SPRITE_CHUNK, SPRITE_COLS, sprite_png

    x = test_set("mnist").x_test.numpy()
    return json.dumps({"key": "test", "n": len(x), "size": SPRITE_CHUNK, "cols": SPRITE_COLS, "noun": "digit",
                       "bytes_per_sheet": 1000, "chunk": 0, "png": b64(sprite_png(x, 0))})


@pytest.fixture
def harness(browser, sprite):
    ARTIFACTS.mkdir(exist_ok=True)
    ctx = browser.new_context(viewport={"width": 900, "height": 600})
    page = ctx.new_page()
    page.goto("about:blank")

    def mount(specs, linked=False, scored=True, canvases=None):
        from ui import hover_card

        blob = hover_card.bundle(specs, linked) if specs else None
        clf_blob = hover_card.classifier_blob() if scored else None
        return page.evaluate(MOUNT, [module_source("map_hover"), sprite, b64(clf_blob), b64(blob), canvases or {}])

    page.mount = mount
    page.hover = lambda **detail: page.evaluate(HOVER, {"clientX": 200, "clientY": 150, "name": "", **detail})
    yield page
    ctx.close()


def decoded(active, z) -> np.ndarray:
    from vae.latent import decode

    return decode(active.model, np.asarray(z, np.float32).reshape(1, -1))[0]


def check_pane(pane, active, z, clf):
    """The pane shows the decoding of z (8-bit pixels) and its digit-likeness score."""
    from vae.classifier import digit_confidence

    want = decoded(active, z)
    got = np.asarray(pane["gray"], np.float32).reshape(28, 28) / 255.0
    assert np.abs(got - want).max() <= 1.5 / 255, np.abs(got - want).max()
    assert got.mean() > 0.01  # a drawn image, not a black canvas
    if clf is not None:
        assert abs(pane["score"] - digit_confidence(clf, want[None])[0]) < 2e-3
        assert pane["scoreText"].startswith("looks like a digit: ")


def test_native_map_decodes_empty_space_exactly(harness, bundled, clf):
    from ui import hover_card

    a, z = bundled["ae-2d"]
    spec = hover_card.decode_spec(a, "m", "native", z, z, label="AE")
    harness.mount([spec])
    lo, hi = z.min(0), z.max(0)
    # The emptiest of a coarse grid of points inside the codes' box: a hole of the AE's plane.
    grid = np.stack(np.meshgrid(np.linspace(lo[0], hi[0], 25), np.linspace(lo[1], hi[1], 25)), -1).reshape(-1, 2)
    gap = np.sqrt(((grid[:, None, :] - z[None, ::5, :]) ** 2).sum(-1)).min(1)
    hole = grid[gap.argmax()]
    r = harness.hover(key="m", index=None, x=float(hole[0]), y=float(hole[1]))
    assert r["display"] == "block" and r["mode"] == "native" and not r["dotShown"]
    assert r["note"].startswith("exact") and len(r["panes"]) == 1 and r["panes"][0]["name"] == "AE"
    np.testing.assert_allclose(r["last"][0]["z"], hole, rtol=0, atol=1e-5)
    check_pane(r["panes"][0], a, hole, clf)
    harness.screenshot(path=str(ARTIFACTS / "hover-harness-native-hole.png"))
    # Over a dot: the dot's digit beside the decoding of the point under the cursor.
    i = 17
    r = harness.hover(key="m", index=i, name="7", x=float(z[i, 0]) + 0.01, y=float(z[i, 1]))
    assert r["dotShown"] and f"#{i}" in r["text"] and r["text"].startswith("digit 7")
    check_pane(r["panes"][0], a, z[i] + [0.01, 0.0], clf)
    # Moving: one decoding per animation frame, at the newest position.
    frames = r["frames"]
    for t in np.linspace(0, 1, 5):
        p = lo + t * (hi - lo)
        r = harness.hover(key="m", index=None, x=float(p[0]), y=float(p[1]))
    assert r["frames"] >= frames + 10
    print(f"decode {r['decodeMs']:.2f} ms, score {r['scoreMs']:.2f} ms per frame")
    np.testing.assert_allclose(r["last"][0]["z"], hi, rtol=0, atol=1e-4)
    harness.hover(key="m", index=None, x=float(hole[0]), y=float(hole[1]))
    ARTIFACTS.mkdir(exist_ok=True)
    assert harness.evaluate("() => { window.dispatchEvent(new CustomEvent('latent-lab-map-hover', {detail: null}));"
                            f" return document.querySelector('{CARD}').style.display; }}") == "none"


def test_pca_plane_is_the_map_services(harness, bundled, clf):
    from ui import hover_card
    from vae.maps.projection import compute_map, make_projection

    a, z = bundled["vae-16d"]
    y = compute_map(z, "pca")  # what the map service draws
    spec = hover_card.decode_spec(a, "m", "pca", z, y)
    assert spec.plane == "pca"
    harness.mount([spec])
    pts = np.array([[0.0, 0.0], [1.5, -2.0], [-3.0, 2.5]])
    want = make_projection("pca").fit(z).inverse_transform(pts)
    for p, w in zip(pts, want):
        r = harness.hover(key="m", index=None, x=float(p[0]), y=float(p[1]))
        assert r["mode"] == "pca" and "PCA plane" in r["note"]
        np.testing.assert_allclose(r["last"][0]["z"], w, rtol=0, atol=1e-4)
        check_pane(r["panes"][0], a, w, clf)
    harness.screenshot(path=str(ARTIFACTS / "hover-harness-pca.png"))


def test_approximate_map_blends_the_nearest_dots_as_approx_codes(harness, bundled, clf):
    from ui import hover_card
    from vae.maps.neighbours import approx_codes

    a, z = bundled["vae-16d"]
    # A stand-in for a t-SNE map (its layout does not matter to the blend): clusters far apart.
    rng = np.random.default_rng(0)
    y = (z[:, :2] * 3 + rng.normal(0, 0.5, (len(z), 2))).astype(np.float32)
    spec = hover_card.decode_spec(a, "t", "tsne", z, y, map_id="the-tsne-map")
    assert spec.plane == "approx"
    harness.mount([spec], canvases={"t": "the-tsne-map"})
    pts = np.array([y[5] + [0.3, -0.2], y[400] + [1.0, 1.0], [0.0, 0.0], [40.0, -40.0]], np.float64)
    want = approx_codes(y, z.astype(np.float16).astype(np.float32), pts)  # the float16 codes the browser has
    assert np.abs(want - approx_codes(y, z, pts)).max() < 5e-3  # and float16 changes the blend very little
    for p, w in zip(pts, want):
        r = harness.hover(key="t", index=None, x=float(p[0]), y=float(p[1]))
        assert r["mode"] == "approx" and r["note"] == "approximate: blended from the 8 nearest dots"
        np.testing.assert_allclose(r["last"][0]["z"], w, rtol=0, atol=1e-5)
    check_pane(r["panes"][0], a, w, clf)
    # On a dot: the dot's own code, said so.
    r = harness.hover(key="t", index=400, name="3", x=float(y[400, 0]) + 0.05, y=float(y[400, 1]))
    assert r["note"] == "this dot's own code (exact)"
    np.testing.assert_allclose(r["last"][0]["z"], z[400].astype(np.float16), rtol=0, atol=1e-6)
    harness.screenshot(path=str(ARTIFACTS / "hover-harness-approx.png"))
    # Another map under the same key (the page switched methods; its spec is on its way): nothing decoded.
    harness.evaluate("() => { window.__latentLabMaps.t.state.d.id = 'another-map'; }")
    r = harness.hover(key="t", index=None, x=0.0, y=0.0)
    assert r["display"] == "none"


def test_linked_pair_decodes_the_same_point_in_both(harness, bundled, clf):
    from ui import hover_card

    specs = [hover_card.decode_spec(bundled[n][0], f"compare_map_{k}", "native", bundled[n][1], bundled[n][1],
                                    label=n.upper()) for k, n in enumerate(("ae-2d", "vae-2d"))]
    harness.mount(specs, linked=True)
    for hovered in (0, 1):
        p = np.array([0.4, -1.1]) if hovered else np.array([-1.0, 0.8])
        r = harness.hover(key=f"compare_map_{hovered}", index=None, x=float(p[0]), y=float(p[1]))
        assert [q["key"] for q in r["panes"]] == ["compare_map_0", "compare_map_1"]  # the page's order, always
        assert [q["here"] for q in r["panes"]] == [hovered == 0, hovered == 1]
        assert r["note"] == "same latent coordinates (z₁, z₂) in both models · exact"
        for pane, name in zip(r["panes"], ("ae-2d", "vae-2d")):
            assert pane["name"] == name.upper()
            check_pane(pane, bundled[name][0], p, clf)
    harness.screenshot(path=str(ARTIFACTS / "hover-harness-linked.png"))


def test_linked_pca_planes_say_so(harness, bundled):
    from ui import hover_card
    from vae.maps.projection import compute_map

    specs = []
    for k, n in enumerate(("ae-2d", "vae-16d")):
        a, z = bundled[n]
        specs.append(hover_card.decode_spec(a, f"c{k}", "pca", z, compute_map(z, "pca")))
    harness.mount(specs, linked=True, scored=False)
    r = harness.hover(key="c1", index=None, x=1.0, y=-1.0)
    assert r["note"] == "same plane coordinates, each model's own PCA plane · exact"
    assert len(r["panes"]) == 2 and all(p["score"] is None and p["scoreText"] == "" for p in r["panes"])
    for pane, spec in zip(r["panes"], specs):
        np.testing.assert_allclose(r["last"][specs.index(spec)]["z"], spec.to_codes([[1.0, -1.0]])[0], atol=1e-4)


def test_no_spec_no_decoding(harness, bundled):
    """The old call (no decoders): a dot shows its digit, empty space shows nothing."""
    harness.mount([])
    r = harness.hover(key="map_scatter", index=None, x=0.0, y=0.0)
    assert r["display"] == "none"
    r = harness.hover(key="map_scatter", index=3, name="0", x=0.0, y=0.0)
    assert r["display"] == "block" and r["panes"] == [] and r["dotShown"] and r["text"].startswith("digit 0 · #3")


# --- the real app ------------------------------------------------------------------------------------

EMPTY_SPOT = """async () => {
  const m = window.__latentLabMaps.map_scatter, S = m.state;
  S.over.scrollIntoView({block: "center"});
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const r = S.over.getBoundingClientRect();
  const n = m.n(), pts = [...Array(n).keys()].map(i => m.toClient(i));
  let best = null;
  for (let gx = r.left + 90; gx < r.right - 40; gx += 12) for (let gy = r.top + 30; gy < r.bottom - 70; gy += 12) {
    let near = Infinity;
    for (let i = 0; i < n; i += 2) { const dx = pts[i].x - gx, dy = pts[i].y - gy; near = Math.min(near, dx * dx + dy * dy); }
    if (!best || near > best.near) best = {x: gx, y: gy, near};
  }
  return {x: best.x, y: best.y, px: Math.sqrt(best.near)};
}"""


def test_app_map_hover_over_empty_space_shows_a_decoded_image(page, server):
    page.goto(f"{server}/map?model=ae-2d")
    wait_for_app(page)
    page.wait_for_function("() => window.__latentLabMaps && window.__latentLabMaps.map_scatter "
                           "&& window.__latentLabMaps.map_scatter.n() > 0", timeout=120_000)
    page.wait_for_function("() => window.__latentLabHover && window.__latentLabHover.maps", timeout=60_000)
    wait_for_app(page)
    spot = page.evaluate(EMPTY_SPOT)
    assert spot["px"] > 15  # really empty: no dot within 15 px
    page.mouse.move(spot["x"] - 40, spot["y"] - 20)
    page.mouse.move(spot["x"], spot["y"], steps=8)
    page.wait_for_function(f"() => {{ const c = document.querySelector('{CARD}'); return c && c.style.display === "
                           "'block' && c.dataset.mode === 'native'; }", timeout=20_000)
    r = page.evaluate(f"""() => {{
        const card = document.querySelector('{CARD}'), f = card.querySelector('.llh-code');
        const d = f.querySelector('canvas').getContext('2d').getImageData(0, 0, 28, 28).data;
        let s = 0, mx = 0; for (let i = 0; i < d.length; i += 4) {{ s += d[i]; mx = Math.max(mx, d[i]); }}
        return {{mean: s / 784, max: mx, dot: card.querySelector('.llh-dot').style.display,
                 note: card.querySelector('.llh-note').textContent, score: f.dataset.score,
                 z: window.__latentLabHover.last[0].z}}; }}""")
    assert r["max"] > 60 and r["mean"] > 2, r  # the decoder drew something there, the card is not black
    assert r["dot"] == "none" and r["note"].startswith("exact")  # no dot under the cursor: only the decoding
    assert r["score"] is not None and 0.0 < float(r["score"]) <= 1.0
    assert len(r["z"]) == 2
    shot(page, "hover-app-ae-2d-empty-space")
    assert_no_exception(page)


def test_app_compare_linked_hover_shows_both_models(page, server):
    page.goto(f"{server}/compare")
    wait_for_app(page, timeout=180_000)
    page.wait_for_function("() => ['compare_map_0', 'compare_map_1'].every(k => window.__latentLabMaps && "
                           "window.__latentLabMaps[k] && window.__latentLabMaps[k].n() > 0)", timeout=180_000)
    page.wait_for_function("() => window.__latentLabHover && window.__latentLabHover.maps && "
                           "window.__latentLabHover.maps.linked && window.__latentLabHover.maps.list.length === 2",
                           timeout=60_000)
    wait_for_app(page)
    box = page.evaluate("""async () => { const o = window.__latentLabMaps.compare_map_1.state.over;
        o.scrollIntoView({block: "center"});
        await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
        const b = o.getBoundingClientRect(); return [b.left, b.top, b.width, b.height]; }""")
    x, y = box[0] + box[2] * 0.5, box[1] + box[3] * 0.45
    page.mouse.move(x - 30, y - 10)
    page.mouse.move(x, y, steps=6)
    page.wait_for_function(f"() => {{ const c = document.querySelector('{CARD}'); return c && c.style.display === "
                           "'block' && c.querySelectorAll('.llh-code[data-score]').length === 2; }", timeout=20_000)
    r = page.evaluate(f"""() => {{
        const card = document.querySelector('{CARD}');
        return {{note: card.querySelector('.llh-note').textContent,
                 panes: [...card.querySelectorAll('.llh-code')].map(f => {{
                   const d = f.querySelector('canvas').getContext('2d').getImageData(0, 0, 28, 28).data;
                   let mx = 0; for (let i = 0; i < d.length; i += 4) mx = Math.max(mx, d[i]);
                   return {{key: f.dataset.map, score: Number(f.dataset.score), max: mx, here: f.classList.contains('llh-here'),
                            name: f.querySelector('.llh-name').textContent}}; }}),
                 last: window.__latentLabHover.last}}; }}""")
    assert [p["key"] for p in r["panes"]] == ["compare_map_0", "compare_map_1"]
    assert [p["here"] for p in r["panes"]] == [False, True]
    assert r["note"] in ("same plane coordinates, each model's own PCA plane · exact",
                         "same latent coordinates (z₁, z₂) in both models · exact")
    assert all(0.0 < p["score"] <= 1.0 for p in r["panes"]) and max(p["max"] for p in r["panes"]) > 60
    assert len(r["last"]) == 2
    if "PCA" in r["note"]:  # each model's own plane: two different codes
        assert r["last"][0]["z"] != r["last"][1]["z"]
    else:  # a 2-d pair: the very same code in both
        assert r["last"][0]["z"] == r["last"][1]["z"]
    shot(page, "hover-app-compare-linked")
    assert_no_exception(page)
