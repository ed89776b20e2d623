// The maps' hover card: next to the cursor, the hovered test digit and, where the page sent the
// decoders, the decoded image of the point under the cursor (also over empty space, where there is no
// digit), with how much it looks like a digit.
//
// The map (ui/map_canvas.js) dispatches a window event "latent-lab-map-hover" whose detail is null
// when the pointer leaves the plot, else {key (the map's key), index (the dot under the cursor, or
// null over empty space), name (its class), x, y (the cursor in map coordinates), clientX, clientY}.
//
// This module is mounted up to three times per page (ui/hover_card.py), and everything it keeps
// lives in one object on window (the module is called again on every rerun, not unmounted):
//   data {key, n, size, cols, noun, chunk, png}   (JSON) the test digits' sprite sheets: `size`
//        digits per PNG sheet, `cols` per row, requested the first time one of a sheet is hovered
//        (trigger "want") and kept for the whole visit; png: base64 PNG of sheet `chunk`, or null.
//   data = bytes "LLC1..."   the digit classifier (vae/export.py's pack_classifier), parsed once.
//   data = bytes "LLB1..."   the maps bundle (hover_card.bundle): header {maps: [{key, label, plane,
//        latentDim, decoder, mean, components, codes, positions, n, mapId}], linked, k, threshold}
//        and its parts (packed decoders, float16 codes, float32 map positions).
// A map's code at (x, y): native and PCA planes exactly, z = mean + x * components[0] + y *
// components[1]; t-SNE and UMAP ("approx") by the inverse-distance-weighted (1/d^2) mean of the codes
// of the k nearest dots, the dot's own code on a dot (vae.maps.neighbours.approx_codes). Decoding
// and scoring run at most once per animation frame; the classifier scores every other frame when
// it takes longer than SLOW_SCORE_MS.

import { classify, decode, halves, parseClassifier, parseDecoder, readHeader, readParts } from "./nets.js";

const SHEETS = (window.__latentLabSheets = window.__latentLabSheets || new Map()); // key -> Map(chunk -> img)
const S = (window.__latentLabHover = window.__latentLabHover ||
  { pending: {}, decoders: new Map(), frames: 0, decodeTimes: [], scoreTimes: [], scoreMs: 0 });
const SCALE = 4;
const PX = 28 * SCALE;
const SLOW_SCORE_MS = 8;
const EPS = 1e-12; // as vae.maps.neighbours: nearer than this is on the dot
const STYLE = `
#latent-lab-hover-card{position:fixed;z-index:100000;pointer-events:none;display:none;background:#fff;color:#222;
 border:1px solid #d0d0d8;border-radius:8px;padding:6px 6px 4px;box-shadow:0 4px 14px rgba(0,0,0,.2);
 font:13px/1.3 'Source Sans Pro',sans-serif;text-align:center;max-width:${3 * PX + 60}px}
#latent-lab-hover-card .llh-row{display:flex;gap:6px;justify-content:center;align-items:flex-start}
#latent-lab-hover-card .llh-pane{margin:0;width:${PX}px}
#latent-lab-hover-card canvas{width:${PX}px;height:${PX}px;display:block;image-rendering:pixelated;
 border-radius:4px;background:#000}
#latent-lab-hover-card .llh-pane.llh-here canvas{outline:2px solid #4a7bd0;outline-offset:1px}
#latent-lab-hover-card .llh-name{font-weight:600;overflow:hidden;display:-webkit-box;-webkit-line-clamp:2;
 -webkit-box-orient:vertical;overflow-wrap:anywhere;line-height:1.2}
#latent-lab-hover-card .llh-score{font-size:12px;line-height:1.2}
#latent-lab-hover-card .llh-good{color:#1b7a36}#latent-lab-hover-card .llh-bad{color:#b3261e}
#latent-lab-hover-card .llh-note{font-size:11.5px;opacity:.75;margin-top:3px;line-height:1.25}`;

function sheets(key) {
  if (!SHEETS.has(key)) SHEETS.set(key, new Map());
  return SHEETS.get(key);
}

// --- codes under the cursor ----------------------------------------------------------------------

// The inverse-distance-weighted mean of the codes of the k map positions nearest to (x, y), exactly a
// position's own code when (x, y) is on it. positions: Float32Array (2n) x0 y0 x1 y1 ...; codes:
// Float32Array (n * dim). -> Float32Array(dim)
export function approxCode(positions, codes, dim, x, y, k = 8) {
  const n = positions.length / 2;
  k = Math.max(1, Math.min(k, n));
  const best = new Float64Array(k).fill(Infinity), idx = new Int32Array(k).fill(-1);
  for (let i = 0; i < n; i++) {
    const dx = positions[2 * i] - x, dy = positions[2 * i + 1] - y, dd = dx * dx + dy * dy;
    if (dd >= best[k - 1]) continue;
    let j = k - 1;
    while (j > 0 && best[j - 1] > dd) { best[j] = best[j - 1]; idx[j] = idx[j - 1]; j--; }
    best[j] = dd; idx[j] = i;
  }
  const z = new Float32Array(dim);
  if (Math.sqrt(best[0]) <= EPS) { z.set(codes.subarray(idx[0] * dim, idx[0] * dim + dim)); return z; }
  let total = 0;
  const acc = new Float64Array(dim);
  for (let j = 0; j < k; j++) {
    if (idx[j] < 0) continue;
    const d = Math.max(Math.sqrt(best[j]), EPS), w = 1 / (d * d), base = idx[j] * dim;
    total += w;
    for (let c = 0; c < dim; c++) acc[c] += w * codes[base + c];
  }
  for (let c = 0; c < dim; c++) z[c] = acc[c] / total;
  return z;
}

// The code of map `m` at (x, y) of its own map (or of the hovered map, in a linked pair of planes);
// `index`: the dot under the cursor, if any and if it is a dot of this very map.
export function codeAt(m, x, y, index = null) {
  if (m.plane === "approx") {
    if (index != null && index >= 0 && index < m.n) return m.codes.slice(index * m.latentDim, (index + 1) * m.latentDim);
    return approxCode(m.positions, m.codes, m.latentDim, x, y, S.maps ? S.maps.k : 8);
  }
  const z = new Float32Array(m.latentDim), [c0, c1] = m.components;
  for (let c = 0; c < m.latentDim; c++) z[c] = m.mean[c] + x * c0[c] + y * c1[c];
  return z;
}

// --- the card ------------------------------------------------------------------------------------

function card() {
  let el = document.getElementById("latent-lab-hover-card");
  if (!el) {
    if (!document.getElementById("latent-lab-hover-style")) {
      const style = document.createElement("style");
      style.id = "latent-lab-hover-style";
      style.textContent = STYLE;
      document.head.appendChild(style);
    }
    el = document.createElement("div");
    el.id = "latent-lab-hover-card";
    el.setAttribute("data-testid", "mapHoverCard");
    el.innerHTML =
      `<div class="llh-row"><figure class="llh-pane llh-dot"><canvas width="${PX}" height="${PX}"></canvas>` +
      `<div class="ll-label"></div></figure><span class="llh-decoded"></span></div><div class="llh-note"></div>`;
    document.body.appendChild(el);
  }
  return el;
}

// The decoded panes: one per map shown (1, or 2 for a linked pair), rebuilt when that changes.
function panes(el, maps) {
  const holder = el.querySelector(".llh-decoded"), want = maps.map(m => m.key).join("\u0000");
  if (holder.dataset.maps !== want) {
    holder.replaceChildren(...maps.map(m => {
      const f = document.createElement("figure");
      f.className = "llh-pane llh-code";
      f.dataset.map = m.key;
      f.innerHTML = `<canvas width="28" height="28"></canvas><div class="llh-name"></div><div class="llh-score"></div>`;
      f.querySelector(".llh-name").textContent = m.label;
      f.__image = f.querySelector("canvas").getContext("2d").createImageData(28, 28);
      return f;
    }));
    holder.dataset.maps = want;
    holder.style.display = maps.length ? "contents" : "none";
  }
  return [...holder.children];
}

function place(el, ev) {
  if (!ev || ev.clientX === undefined) return;
  const w = el.offsetWidth || 130, h = el.offsetHeight || 150, gap = 18;
  let x = ev.clientX + gap, y = ev.clientY + gap;
  if (x + w > window.innerWidth - 4) x = ev.clientX - gap - w;
  if (y + h > window.innerHeight - 4) y = ev.clientY - gap - h;
  el.style.left = `${Math.max(4, x)}px`;
  el.style.top = `${Math.max(4, y)}px`;
}

function drawDot() {
  const el = card(), d = S.data, pane = el.querySelector(".llh-dot");
  if (!d || S.hovered == null) { pane.style.display = "none"; el.dataset.shown = ""; return; }
  pane.style.display = "";
  const canvas = pane.querySelector("canvas"), ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  const chunk = Math.floor(S.hovered / d.size);
  const sheet = sheets(d.key).get(chunk);
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (sheet) {
    const j = S.hovered - chunk * d.size;
    ctx.drawImage(sheet, (j % d.cols) * 28, Math.floor(j / d.cols) * 28, 28, 28, 0, 0, canvas.width, canvas.height);
    el.dataset.shown = String(S.hovered);
  } else {
    ctx.fillStyle = "#bbb";
    ctx.font = "13px sans-serif";
    ctx.textAlign = "center";
    ctx.fillText("loading…", canvas.width / 2, canvas.height / 2);
    el.dataset.shown = "";
    request(chunk);
  }
}

function request(chunk) {
  const now = Date.now();
  if (S.pending[chunk] && now - S.pending[chunk] < 2000) return; // asked recently; the answer is on its way
  S.pending[chunk] = now;
  if (S.setTriggerValue) S.setTriggerValue("want", chunk);
}

// The maps whose images the card shows for a hover of map `m`: m alone, or, on a linked page, every
// map with a plane (native, PCA), in the page's order.
function shownFor(m) {
  if (!m) return [];
  if (!S.maps.linked || m.plane === "approx") return [m];
  return S.maps.list.filter(o => o.plane !== "approx");
}

// The map `key` as the page sent it, if the map on screen is still that one.
function mapFor(key) {
  const m = S.maps && S.maps.byKey.get(key);
  if (!m) return null;
  const shown = window.__latentLabMaps && window.__latentLabMaps[key];
  const st = shown && shown.state;
  if (m.mapId && st && st.d && st.d.id && st.d.id !== m.mapId) return null; // a new map, its bundle on its way
  return m;
}

function note(m, shown, index) {
  const dims = m.latentDim === 1 ? "z₁" : "(z₁, z₂)";
  const how = m.plane === "approx"
    ? (index != null ? "this dot's own code (exact)" : `approximate: blended from the ${S.maps.k} nearest dots`)
    : m.plane === "native" ? `exact: the code ${dims} under the cursor` : "exact: the code on the model's PCA plane";
  if (shown.length < 2) {
    if (S.maps.linked && m.plane === "approx") return `${how}; t-SNE and UMAP maps of two models share no coordinates`;
    return how;
  }
  const planes = new Set(shown.map(o => o.plane));
  const same = planes.size > 1 ? "same map coordinates, each model's own plane"
    : planes.has("native") ? `same latent coordinates ${dims} in both models`
    : "same plane coordinates, each model's own PCA plane";
  return `${same} · exact`;
}

// The median of the last 15 timings: the first runs (before the JIT) and a GC pause do not decide.
function recent(times, ms) {
  times.push(ms);
  if (times.length > 15) times.shift();
  const sorted = [...times].sort((a, b) => a - b);
  return sorted[sorted.length >> 1];
}

function frame() {
  S.raf = 0;
  const d = S.ptr, el = card();
  if (!d) return;
  const m = mapFor(d.key), shown = m ? shownFor(m) : [];
  const figs = panes(el, shown);
  S.last = [];
  if (m) {
    let x = Number(d.x), y = Number(d.y);
    if (!Number.isFinite(x) || !Number.isFinite(y)) { // an older map event: the dot's own place
      const st = window.__latentLabMaps && window.__latentLabMaps[d.key] && window.__latentLabMaps[d.key].state;
      if (d.index == null || !st || !st.x) return;
      x = st.x[d.index]; y = st.y[d.index];
    }
    const score = S.clf && (S.scoreMs < SLOW_SCORE_MS || S.frames % 2 === 0);
    let decodeMs = 0, scoreMs = 0;
    shown.forEach((o, i) => {
      const f = figs[i], t0 = performance.now();
      const z = codeAt(o, x, y, o === m && d.index != null ? Number(d.index) : null);
      const probs = decode(o.model, z);
      const img = f.__image;
      for (let p = 0; p < 784; p++) {
        const g = Math.round(255 * probs[p]);
        img.data[4 * p] = img.data[4 * p + 1] = img.data[4 * p + 2] = g;
        img.data[4 * p + 3] = 255;
      }
      f.querySelector("canvas").getContext("2d").putImageData(img, 0, 0);
      const t1 = performance.now();
      decodeMs += t1 - t0;
      if (score) {
        const { p, label } = classify(S.clf, probs);
        scoreMs += performance.now() - t1;
        const s = f.querySelector(".llh-score");
        s.textContent = `looks like a digit: ${p.toFixed(2)} (${label === 8 ? "an" : "a"} ${label})`;
        s.className = `llh-score ${p >= S.maps.threshold ? "llh-good" : "llh-bad"}`;
        f.dataset.score = p.toFixed(4);
        f.dataset.label = String(label);
      }
      f.classList.toggle("llh-here", shown.length > 1 && o === m);
      S.last.push({ key: o.key, z: Array.from(z) });
    });
    S.frames += 1;
    S.decodeMs = recent(S.decodeTimes, decodeMs);
    if (score) S.scoreMs = recent(S.scoreTimes, scoreMs);
    Object.assign(el.dataset, { frames: String(S.frames), decodeMs: S.decodeMs.toFixed(3),
                                scoreMs: S.clf ? (S.scoreMs || 0).toFixed(3) : "", mode: m.plane });
    el.querySelector(".llh-note").textContent = note(m, shown, d.index);
  } else {
    el.dataset.mode = "";
    el.querySelector(".llh-note").textContent = "";
  }
  el.querySelector(".llh-note").style.display = m ? "" : "none";
  S.answered = performance.now(); // for the benchmark: when the card last caught up with the pointer
}

function onHover(e) {
  const d = e && e.detail;
  if (!d) return onUnhover();
  const idx = d.index == null ? null : Number(d.index);
  const m = mapFor(d.key);
  if (idx == null && !m) return onUnhover(); // empty space of a map that cannot decode: nothing to show
  const el = card();
  S.hovered = Number.isFinite(idx) ? idx : null;
  S.ptr = d;
  el.querySelector(".ll-label").textContent = S.hovered == null ? "" :
    `${S.data && S.data.noun ? S.data.noun + " " : ""}${d.name || ""} · #${S.hovered}`;
  drawDot();
  if (!m) { panes(el, []); el.querySelector(".llh-note").style.display = "none"; }
  el.style.display = "block";
  if (m && !S.raf) S.raf = requestAnimationFrame(frame);
  place(el, d);
}

function onUnhover() {
  S.hovered = null;
  S.ptr = null;
  if (S.raf) cancelAnimationFrame(S.raf);
  S.raf = 0;
  const el = document.getElementById("latent-lab-hover-card");
  if (el) el.style.display = "none";
}

function status(parentElement) {
  const el = parentElement && parentElement.querySelector(".ll-status");
  const d = S.data;
  if (!el || !d) return;
  const total = Math.ceil(d.n / d.size), have = sheets(d.key).size;
  el.textContent =
    `Hover a dot to see its digit${S.maps ? ", or anywhere to see what the decoder draws there" : ""}. Digit images ` +
    `load in batches of ${d.size} the first time you hover one of them (${have} of ${total} batches loaded, ` +
    `${(d.bytes_per_sheet / 1024).toFixed(0)} KB each).`;
}

// --- what the page sends -------------------------------------------------------------------------

function takeMaps(bytes) {
  const { header, parts } = readParts(bytes);
  const digest = readHeader(bytes, "LLB1").header.token;
  if (S.maps && S.maps.token === digest) return digest;
  const used = new Set(), list = [];
  for (const spec of header.maps) {
    const blob = parts[spec.decoder], dd = readHeader(blob).header.digest;
    if (!S.decoders.has(dd)) S.decoders.set(dd, parseDecoder(blob));
    used.add(dd);
    const m = { ...spec, model: S.decoders.get(dd) };
    if (m.model.latentDim !== spec.latentDim) throw new Error(`map ${spec.key}: the decoder takes ${m.model.latentDim} numbers`);
    if (spec.plane === "approx") {
      m.codes = halves(parts[spec.codes]);
      m.positions = new Float32Array(parts[spec.positions].slice().buffer);
    }
    list.push(m);
  }
  for (const k of [...S.decoders.keys()]) if (!used.has(k)) S.decoders.delete(k); // only this page's models
  S.maps = { token: digest, list, byKey: new Map(list.map(m => [m.key, m])), linked: !!header.linked,
             k: header.k || 8, threshold: header.threshold == null ? 0.9 : header.threshold };
  return digest;
}

function takeClassifier(bytes) {
  const dd = readHeader(bytes, "LLC1").header.digest;
  if (S.clf && S.clfDigest === dd) return;
  S.clf = parseClassifier(bytes);
  S.clfDigest = dd;
  S.scoreTimes = [];
  S.scoreMs = 0;
  // Let the JIT compile the forward pass while the page is idle, not on the first hover.
  const noise = Float32Array.from({ length: 784 }, (_, i) => ((i * 7919) % 255) / 255);
  const warm = (left) => (window.requestIdleCallback || setTimeout)(() => {
    if (S.clfDigest !== dd) return;
    classify(S.clf, noise);
    if (left > 1) warm(left - 1);
  });
  warm(4);
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  const bytes = data instanceof Uint8Array ? data : data instanceof ArrayBuffer ? new Uint8Array(data) : null;
  if (bytes) {
    const magic = String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3]);
    if (magic === "LLC1") { takeClassifier(bytes); return undefined; }
    const token = takeMaps(bytes);
    status(S.parent);
    return () => { if (S.maps && S.maps.token === token) S.maps = null; }; // the page that sent them is gone
  }
  S.data = data;
  S.setTriggerValue = setTriggerValue;
  S.parent = parentElement;
  if (data && data.png != null && data.chunk != null) {
    const key = data.key, chunk = data.chunk;
    if (!sheets(key).has(chunk)) {
      const img = new Image();
      img.onload = () => {
        sheets(key).set(chunk, img);
        delete S.pending[chunk];
        status(S.parent);
        if (S.hovered != null && Math.floor(S.hovered / data.size) === chunk) drawDot();
      };
      img.src = `data:image/png;base64,${data.png}`;
    }
  }
  status(parentElement);
  if (!S.onHover) {
    S.onHover = onHover;
    window.addEventListener("latent-lab-map-hover", S.onHover);
  }
  // The card is fixed to the window: hide it when the page scrolls away under the cursor.
  if (!S.onScroll) {
    S.onScroll = () => { if (S.ptr) onUnhover(); };
    window.addEventListener("scroll", S.onScroll, { capture: true, passive: true });
  }
  const token = (S.token = {});
  return () => {
    if (S.token !== token) return; // a newer mount owns the listeners
    window.removeEventListener("latent-lab-map-hover", S.onHover);
    S.onHover = null;
    window.removeEventListener("scroll", S.onScroll, { capture: true });
    S.onScroll = null;
    onUnhover();
  };
}
