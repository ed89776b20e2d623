// Latent map scatter: every test digit as a dot on a 2-D canvas, with zoom, pan, click, box and
// lasso picks, a clickable legend, an optional interpolation path on top and a PNG export; marks
// (a drawn digit's place), a clicked point of empty space, a painted background layer (how
// digit-like the decoder's output is) and dots coloured by a value (neighbours kept).
//
// Why not plotly: in a browser without a GPU (a classroom laptop, this project's CI machine)
// plotly's WebGL scatter costs 0.6-1 s of main-thread time per redraw (software GL, read back for
// compositing) plus 1.5 s to load plotly.js the first time; a 2-D canvas draws the 10,000 dots in
// about 10 ms. Streamlit hands this module `data` as {json: "<the map as one JSON string>"} (see
// ui/map_canvas.py for why), which parses to
//   {id, key, n, x, y, xr, yr, labels, names, colors, axes, region, equal, height, filename, pick, path, picks,
//    marks, space, point, layer, colorBy}
// x, y: base64 uint16 positions quantised over the ranges xr, yr; labels: base64 uint8 classes.
// pick: false for a map that only shows (no picks: Box select and Lasso are hidden, a click does
// nothing). path: null, or {x, y, colors, text} for the steps of a walk drawn over the dots (a line
// with a marker per step, stars at its ends); hovering a step shows its text. The path may change
// while the map stays (same id): the view is kept. picks: null, or the test-set indices to show as
// picked while the user has not picked on this map (the session's pick, kept across pages and
// methods, or a lesson link's): drawn as a pick, not reported back.
// marks: [{x, y, label, color}] drawn on top of everything (a ring, a cross, the label); always in
// view. space: a click on empty space (no dot within HIT px) is reported as "point"; point: the
// point Python shows ({x, y} or null), drawn as a cross. colorBy: null, or {values: base64 uint8
// per dot, max, label}: the dots take a sequential colour by value instead of their class's.
// layer: true while the background layer is on; the layer itself comes through a second, tiny
// component (ui/map_layers.js, window.__latentLabLayers[key]), so a new view never resends the dots
// (nor this module: Streamlit sends a component's code with every message that draws it).
// The module is called again on every rerun with the same parentElement: everything it keeps lives
// on that element. A new map (`id` changes) resets the view and the pick; the same map keeps both.
//
// Out: setStateValue("selection", {id, indices}) when digits are picked (a click, a box, a lasso;
// with shift held they add to the pick) or the pick is cleared (double-click); setStateValue("point",
// {id, x, y}) for a click on empty space where `space` is on (null: cleared by a double-click).
// Moving over the plot dispatches a window event "latent-lab-map-hover" with {key, index, name, x, y,
// clientX, clientY}: index is the dot within HIT px (else null, over empty space), x, y the cursor in
// data coordinates; a null detail when the pointer leaves the plot or a drag starts. ui/map_hover.js
// turns it into the card. With the layer on, a settled view (300 ms after the last zoom or pan) is
// dispatched as "latent-lab-map-view" {key, id, view: [[x0, x1], [y0, y1]]} for the channel.

const M = { l: 58, r: 14, t: 12, b: 46 }; // plot margins, CSS px
const HIT = 10; // px: how near a dot the mouse must be to hover or click it
const RADIUS = 2.2;
const SETTLE_MS = 300; // a view must rest this long before the layer for it is asked for
const CLICK_MS = 260; // a click on empty space waits this long for a double-click (which clears instead)
// colorBy's sequential scale (viridis, from 0 to 0.92 so the top stays visible on white): low = dark
const SCALE = ["#440154", "#482475", "#414487", "#355f8d", "#2a788e", "#21918c", "#22a884", "#44bf70",
               "#7ad151", "#a5db36", "#d2e21b"];

function scaleColor(v, max) {
  return SCALE[Math.max(0, Math.min(SCALE.length - 1, Math.round((v / Math.max(1, max)) * (SCALE.length - 1))))];
}

function decode(b64, Type) {
  const bin = atob(b64 || "");
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Type(bytes.buffer, 0, Math.floor(bytes.length / Type.BYTES_PER_ELEMENT));
}

function niceStep(span, target) {
  const raw = span / Math.max(1, target), p = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / p;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

function ticks(lo, hi, px) {
  const step = niceStep(hi - lo, px / 90), out = [];
  if (!(step > 0) || !isFinite(step)) return out;
  const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push([v, v.toFixed(digits)]);
  return out;
}

function build(S, parent) {
  parent.querySelectorAll(".llm-root").forEach(el => el.remove());
  if (S.resize) S.resize.disconnect();
  const root = document.createElement("div");
  root.className = "llm-root";
  root.setAttribute("data-testid", "ll-map");
  root.innerHTML =
    `<div class="llm-bar"><div class="llm-legend" data-testid="ll-map-legend"></div><div class="llm-tools">` +
    `<button data-mode="zoom" title="Drag to zoom into a rectangle (the wheel zooms too)">Zoom</button>` +
    `<button data-mode="pan" title="Drag to move the view">Pan</button>` +
    `<button data-mode="box" data-pick="1" title="Drag a rectangle to pick the digits inside">Box select</button>` +
    `<button data-mode="lasso" data-pick="1" title="Draw around digits to pick them">Lasso</button>` +
    `<button data-act="reset" title="Show the whole map again (or double-click the map)">Reset view</button>` +
    `<button data-act="png" title="Save the map as a PNG picture">Save PNG</button></div></div>` +
    `<div class="llm-plot"><canvas class="llm-base" data-testid="ll-map-canvas"></canvas>` +
    `<canvas class="llm-over"></canvas></div>` +
    `<div class="llm-scale" data-testid="ll-map-scale" hidden></div>` +
    `<div class="llm-hint" data-testid="ll-map-hint"></div>`;
  parent.appendChild(root);
  S.root = root;
  S.plot = root.querySelector(".llm-plot");
  S.base = root.querySelector(".llm-base");
  S.over = root.querySelector(".llm-over");
  S.mode = S.mode || "zoom";
  root.querySelectorAll("[data-mode]").forEach(b => b.addEventListener("click", () => setMode(S, b.dataset.mode)));
  root.querySelector('[data-act="reset"]').addEventListener("click", () => { resetView(S); draw(S); viewMoved(S); });
  root.querySelector('[data-act="png"]').addEventListener("click", () => savePng(S));
  const over = S.over;
  // Pointer events: a mouse, a pen or a finger (a class on tablets). The canvas captures the
  // pointer while a drag lasts, so a drag that leaves the map still ends where it should.
  over.addEventListener("pointerdown", e => down(S, e));
  over.addEventListener("pointermove", e => (S.drag ? move(S, e) : hover(S, e)));
  over.addEventListener("pointerup", e => up(S, e));
  over.addEventListener("pointercancel", () => { S.drag = null; overlay(S); });
  over.addEventListener("pointerleave", () => { if (!S.drag) hover(S, null); });
  over.addEventListener("dblclick", e => {
    e.preventDefault();
    clearTimeout(S.spaceTimer);
    resetView(S);
    if (S.point) setPoint(S, null);
    if (canPick(S)) select(S, []); else draw(S);
    viewMoved(S);
  });
  over.addEventListener("wheel", e => wheel(S, e), { passive: false });
  S.resize = new ResizeObserver(() => { if (size(S)) { draw(S); viewMoved(S); } });
  S.resize.observe(S.plot);
  setMode(S, S.mode);
}

function canPick(S) { return !S.d || S.d.pick !== false; }

function setMode(S, mode) {
  S.mode = mode;
  S.root.dataset.mode = mode;
  S.root.querySelectorAll("[data-mode]").forEach(b => b.classList.toggle("on", b.dataset.mode === mode));
  S.over.style.cursor = mode === "pan" ? "grab" : "crosshair";
}

function load(S, d) {
  const n = d.n;
  const qx = decode(d.x, Uint16Array), qy = decode(d.y, Uint16Array);
  S.labels = decode(d.labels, Uint8Array).slice(0, n);
  S.x = new Float32Array(n);
  S.y = new Float32Array(n);
  const sx = (d.xr[1] - d.xr[0]) / 65535, sy = (d.yr[1] - d.yr[0]) / 65535;
  for (let i = 0; i < n; i++) { S.x[i] = d.xr[0] + qx[i] * sx; S.y[i] = d.yr[0] + qy[i] * sy; }
  S.n = Math.min(n, qx.length, qy.length, S.labels.length);
  S.sx = new Float32Array(S.n);
  S.sy = new Float32Array(S.n);
  S.selected = new Uint8Array(S.n);
  S.nSelected = 0;
  S.hidden = new Set();
  S.hovered = null;
  S.byClass = d.names.map(() => []);
  for (let i = 0; i < S.n; i++) if (S.byClass[S.labels[i]]) S.byClass[S.labels[i]].push(i);
  S.colorKey = null;
  S.point = null;
  legend(S);
  resetView(S);
}

function legend(S) {
  const box = S.root.querySelector(".llm-legend");
  box.innerHTML = "";
  S.d.names.forEach((name, c) => {
    const item = document.createElement("button");
    item.className = "llm-item";
    item.dataset.cls = String(c);
    item.title = "Click: hide or show this class. Double-click: show only this class.";
    item.innerHTML = `<span class="llm-dot" style="background:${S.d.colors[c % S.d.colors.length]}"></span>`;
    item.appendChild(document.createTextNode(name));
    item.addEventListener("click", () => {
      clearTimeout(S.legendTimer);
      S.legendTimer = setTimeout(() => {
        if (S.hidden.has(c)) S.hidden.delete(c); else S.hidden.add(c);
        legendState(S); draw(S);
      }, 220);
    });
    item.addEventListener("dblclick", () => {
      clearTimeout(S.legendTimer);
      const only = S.hidden.size === S.d.names.length - 1 && !S.hidden.has(c);
      S.hidden = new Set(only ? [] : S.d.names.map((_, k) => k).filter(k => k !== c));
      legendState(S); draw(S);
    });
    box.appendChild(item);
  });
  legendState(S);
}

function legendState(S) {
  S.root.querySelectorAll(".llm-item").forEach(el => el.classList.toggle("off", S.hidden.has(Number(el.dataset.cls))));
}

// ---- geometry ---------------------------------------------------------------------------------

function size(S) {
  const w = Math.max(100, Math.round(S.plot.clientWidth)), h = S.d.height;
  if (w === S.w && h === S.h) return false;
  S.w = w; S.h = h;
  const dpr = window.devicePixelRatio || 1;
  for (const c of [S.base, S.over]) {
    c.width = Math.round(w * dpr); c.height = Math.round(h * dpr);
    c.style.width = `${w}px`; c.style.height = `${h}px`;
    c.getContext("2d").setTransform(dpr, 0, 0, dpr, 0, 0);
  }
  S.plot.style.height = `${h}px`;
  if (S.view) S.view = fit(S, S.view);
  return true;
}

function dataRange(S) {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (let i = 0; i < S.n; i++) {
    const x = S.x[i], y = S.y[i];
    if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
  }
  const p = S.d.path;
  if (p) for (let k = 0; k < p.x.length; k++) {
    x0 = Math.min(x0, p.x[k]); x1 = Math.max(x1, p.x[k]); y0 = Math.min(y0, p.y[k]); y1 = Math.max(y1, p.y[k]);
  }
  for (const m of S.d.marks || []) {
    x0 = Math.min(x0, m.x); x1 = Math.max(x1, m.x); y0 = Math.min(y0, m.y); y1 = Math.max(y1, m.y);
  }
  const r = S.d.region;
  if (r) { x0 = Math.min(x0, r[0][0]); x1 = Math.max(x1, r[0][1]); y0 = Math.min(y0, r[1][0]); y1 = Math.max(y1, r[1][1]); }
  if (!(x1 > x0)) { x0 -= 1; x1 += 1; }
  if (!(y1 > y0)) { y0 -= 1; y1 += 1; }
  const px = (x1 - x0) * 0.04, py = (y1 - y0) * 0.04;
  return { x0: x0 - px, x1: x1 + px, y0: y0 - py, y1: y1 + py };
}

// For the native plane: the same units per pixel on both axes (widen the narrower span).
function fit(S, v) {
  if (!S.d.equal) return v;
  const pw = S.w - M.l - M.r, ph = S.h - M.t - M.b;
  const ux = (v.x1 - v.x0) / pw, uy = (v.y1 - v.y0) / ph, u = Math.max(ux, uy);
  const cx = (v.x0 + v.x1) / 2, cy = (v.y0 + v.y1) / 2;
  return { x0: cx - u * pw / 2, x1: cx + u * pw / 2, y0: cy - u * ph / 2, y1: cy + u * ph / 2 };
}

function resetView(S) {
  if (!S.w) size(S);
  S.view = fit(S, dataRange(S));
}

function tx(S, x) { return M.l + (x - S.view.x0) / (S.view.x1 - S.view.x0) * (S.w - M.l - M.r); }
function ty(S, y) { return M.t + (S.view.y1 - y) / (S.view.y1 - S.view.y0) * (S.h - M.t - M.b); }
function ix(S, px) { return S.view.x0 + (px - M.l) / (S.w - M.l - M.r) * (S.view.x1 - S.view.x0); }
function iy(S, py) { return S.view.y1 - (py - M.t) / (S.h - M.t - M.b) * (S.view.y1 - S.view.y0); }

// ---- drawing ----------------------------------------------------------------------------------

function paint(S, ctx, w, h) {
  const d = S.d, t0 = performance.now();
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, w, h);
  const pl = M.l, pt = M.t, pr = w - M.r, pb = h - M.b;
  paintLayer(S, ctx, pl, pt, pr, pb);
  ctx.font = "12px 'Source Sans Pro', sans-serif";
  ctx.strokeStyle = "#ececf0"; ctx.lineWidth = 1; ctx.fillStyle = "#555";
  ctx.textAlign = "center"; ctx.textBaseline = "top";
  for (const [v, s] of ticks(S.view.x0, S.view.x1, pr - pl)) {
    const p = Math.round(tx(S, v)) + 0.5;
    ctx.beginPath(); ctx.moveTo(p, pt); ctx.lineTo(p, pb); ctx.stroke();
    ctx.fillText(s, p, pb + 5);
  }
  ctx.textAlign = "right"; ctx.textBaseline = "middle";
  for (const [v, s] of ticks(S.view.y0, S.view.y1, pb - pt)) {
    const p = Math.round(ty(S, v)) + 0.5;
    ctx.beginPath(); ctx.moveTo(pl, p); ctx.lineTo(pr, p); ctx.stroke();
    ctx.fillText(s, pl - 6, p);
  }
  ctx.font = "13px 'Source Sans Pro', sans-serif"; ctx.fillStyle = "#333";
  ctx.textAlign = "center"; ctx.textBaseline = "bottom";
  ctx.fillText(d.axes[0], (pl + pr) / 2, h - 4);
  ctx.save(); ctx.translate(14, (pt + pb) / 2); ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = "middle"; ctx.fillText(d.axes[1], 0, 0); ctx.restore();

  ctx.save();
  ctx.beginPath(); ctx.rect(pl, pt, pr - pl, pb - pt); ctx.clip();
  for (let i = 0; i < S.n; i++) { S.sx[i] = tx(S, S.x[i]); S.sy[i] = ty(S, S.y[i]); }
  const picking = S.nSelected > 0, groups = S.byValue || S.byClass;
  let drawn = 0;
  for (const pass of picking ? [0, 1] : [1]) { // with a pick: the others faint first, the picked on top
    groups.forEach((idx, c) => {
      if (!S.byValue && S.hidden.has(c)) return;
      ctx.fillStyle = S.byValue ? scaleColor(S.byValue.length - 1 - c, d.colorBy.max) : d.colors[c % d.colors.length];
      ctx.globalAlpha = picking ? (pass ? 0.95 : 0.12) : S.byValue ? 0.9 : 0.75;
      ctx.beginPath();
      for (const i of idx) {
        if (picking && S.selected[i] !== pass) continue;
        if (S.byValue && S.hidden.has(S.labels[i])) continue;
        const x = S.sx[i], y = S.sy[i];
        if (x < pl - 3 || x > pr + 3 || y < pt - 3 || y > pb + 3) continue;
        ctx.moveTo(x + RADIUS, y); ctx.arc(x, y, RADIUS, 0, 2 * Math.PI);
        drawn++;
      }
      ctx.fill();
    });
  }
  ctx.globalAlpha = 1;
  if (d.region) {
    const [[x0, x1], [y0, y1]] = d.region;
    ctx.setLineDash([6, 4]); ctx.strokeStyle = "#222"; ctx.lineWidth = 1.5;
    ctx.strokeRect(tx(S, x0), ty(S, y1), tx(S, x1) - tx(S, x0), ty(S, y0) - ty(S, y1));
    ctx.setLineDash([]);
  }
  if (d.path) paintPath(S, ctx, d.path);
  if (S.point) paintMark(S, ctx, { x: S.point.x, y: S.point.y, label: "clicked point", color: "#111" }, "cross");
  for (const m of d.marks || []) paintMark(S, ctx, m, "ring");
  ctx.restore();
  ctx.strokeStyle = "#bbb"; ctx.lineWidth = 1;
  ctx.strokeRect(pl + 0.5, pt + 0.5, pr - pl - 1, pb - pt - 1);
  return { drawn, ms: performance.now() - t0 };
}

// The layer: an n x n picture stretched over its own view (which covers more than the plot), smoothed.
function paintLayer(S, ctx, pl, pt, pr, pb) {
  const L = S.layer;
  if (!S.d.layer || !L || L.id !== S.d.id || !L.img) return;
  const [[x0, x1], [y0, y1]] = L.view;
  ctx.save();
  ctx.beginPath(); ctx.rect(pl, pt, pr - pl, pb - pt); ctx.clip();
  ctx.imageSmoothingEnabled = true; ctx.imageSmoothingQuality = "high";
  ctx.drawImage(L.img, tx(S, x0), ty(S, y1), tx(S, x1) - tx(S, x0), ty(S, y0) - ty(S, y1));
  ctx.restore();
}

// A mark (a drawn digit's place: a ring and its label) or the clicked point (a cross), over everything.
function paintMark(S, ctx, m, shape) {
  const x = tx(S, m.x), y = ty(S, m.y), color = m.color || "#111";
  if (!isFinite(x) || !isFinite(y)) return;
  ctx.lineCap = "round";
  for (const [stroke, width] of [["rgba(255,255,255,0.95)", 5], [color, 2]]) {
    ctx.strokeStyle = stroke; ctx.lineWidth = width;
    ctx.beginPath();
    if (shape === "ring") { ctx.arc(x, y, 8, 0, 2 * Math.PI); ctx.moveTo(x - 3, y); ctx.lineTo(x + 3, y); ctx.moveTo(x, y - 3); ctx.lineTo(x, y + 3); }
    else { ctx.moveTo(x - 7, y - 7); ctx.lineTo(x + 7, y + 7); ctx.moveTo(x + 7, y - 7); ctx.lineTo(x - 7, y + 7); }
    ctx.stroke();
  }
  if (m.label) {
    ctx.font = "bold 13px 'Source Sans Pro', sans-serif"; ctx.textAlign = "left"; ctx.textBaseline = "middle";
    ctx.lineWidth = 3.5; ctx.strokeStyle = "rgba(255,255,255,0.9)"; ctx.strokeText(m.label, x + 12, y - 10);
    ctx.fillStyle = color; ctx.fillText(m.label, x + 12, y - 10);
  }
}

function star(ctx, x, y, r) {
  ctx.beginPath();
  for (let k = 0; k < 10; k++) {
    const a = -Math.PI / 2 + k * Math.PI / 5, rr = k % 2 ? r * 0.45 : r;
    const px = x + rr * Math.cos(a), py = y + rr * Math.sin(a);
    if (k) ctx.lineTo(px, py); else ctx.moveTo(px, py);
  }
  ctx.closePath();
}

// The walk: a dark line through its steps, a dot per step in the step's colour, stars at the ends.
function paintPath(S, ctx, p) {
  const n = Math.min(p.x.length, p.y.length);
  if (!n) return;
  const px = [], py = [];
  for (let k = 0; k < n; k++) { px.push(tx(S, p.x[k])); py.push(ty(S, p.y[k])); }
  S.pathXY = [px, py];
  ctx.strokeStyle = "rgba(255,255,255,0.9)"; ctx.lineWidth = 4.5; ctx.lineJoin = "round";
  ctx.beginPath(); for (let k = 0; k < n; k++) (k ? ctx.lineTo(px[k], py[k]) : ctx.moveTo(px[k], py[k])); ctx.stroke();
  ctx.strokeStyle = "#222"; ctx.lineWidth = 2;
  ctx.stroke();
  const color = k => (p.colors && p.colors[k]) || "#333";
  for (let k = 1; k < n - 1; k++) {
    ctx.fillStyle = color(k); ctx.strokeStyle = "#fff"; ctx.lineWidth = 1;
    ctx.beginPath(); ctx.arc(px[k], py[k], 4.5, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
  }
  ctx.font = "13px 'Source Sans Pro', sans-serif"; ctx.textAlign = "center"; ctx.textBaseline = "bottom";
  for (const [k, word] of [[0, "start"], [n - 1, "end"]]) {
    ctx.fillStyle = color(k); ctx.strokeStyle = "#111"; ctx.lineWidth = 1;
    star(ctx, px[k], py[k], 9); ctx.fill(); ctx.stroke();
    ctx.lineWidth = 3; ctx.strokeStyle = "rgba(255,255,255,0.85)"; ctx.strokeText(word, px[k], py[k] - 10);
    ctx.fillStyle = "#111"; ctx.fillText(word, px[k], py[k] - 10);
  }
}

function nearestStep(S, x, y) {
  if (!S.d.path || !S.pathXY) return null;
  const [px, py] = S.pathXY;
  let best = null, bd = (HIT + 2) * (HIT + 2);
  for (let k = 0; k < px.length; k++) {
    const dx = px[k] - x, dy = py[k] - y, dd = dx * dx + dy * dy;
    if (dd <= bd) { bd = dd; best = k; }
  }
  return best;
}

function draw(S) {
  if (!S.view || !S.w) return;
  const r = paint(S, S.base.getContext("2d"), S.w, S.h);
  S.draws = (S.draws || 0) + 1;
  Object.assign(S.root.dataset, { points: String(r.drawn), draws: String(S.draws), drawMs: r.ms.toFixed(1) });
  overlay(S);
  hint(S);
}

function overlay(S) {
  const ctx = S.over.getContext("2d");
  ctx.clearRect(0, 0, S.w, S.h);
  if (S.step != null && S.pathXY && S.d.path && S.step < S.pathXY[0].length) { // the hovered step of the walk and what it is
    const k = S.step, x = S.pathXY[0][k], y = S.pathXY[1][k], text = (S.d.path.text || [])[k] || `step ${k + 1}`;
    ctx.strokeStyle = "#111"; ctx.lineWidth = 1.5;
    ctx.beginPath(); ctx.arc(x, y, 8, 0, 2 * Math.PI); ctx.stroke();
    ctx.font = "12px 'Source Sans Pro', sans-serif";
    const w = ctx.measureText(text).width + 12, bx = Math.min(Math.max(x + 12, 2), S.w - w - 2), by = Math.max(y - 30, 2);
    ctx.fillStyle = "rgba(255,255,255,0.95)"; ctx.strokeStyle = "#999"; ctx.lineWidth = 1;
    ctx.fillRect(bx, by, w, 20); ctx.strokeRect(bx + 0.5, by + 0.5, w - 1, 19);
    ctx.fillStyle = "#111"; ctx.textAlign = "left"; ctx.textBaseline = "middle"; ctx.fillText(text, bx + 6, by + 10);
  }
  const g = S.drag;
  if (g && g.moved && (g.kind === "zoom" || g.kind === "box")) {
    ctx.fillStyle = g.kind === "zoom" ? "rgba(108,76,224,0.08)" : "rgba(30,30,30,0.06)";
    ctx.strokeStyle = "#6C4CE0"; ctx.setLineDash([4, 3]); ctx.lineWidth = 1;
    const x = Math.min(g.x0, g.x1), y = Math.min(g.y0, g.y1), w = Math.abs(g.x1 - g.x0), h = Math.abs(g.y1 - g.y0);
    ctx.fillRect(x, y, w, h); ctx.strokeRect(x + 0.5, y + 0.5, w, h); ctx.setLineDash([]);
  } else if (g && g.kind === "lasso" && g.path.length > 1) {
    ctx.strokeStyle = "#6C4CE0"; ctx.fillStyle = "rgba(108,76,224,0.08)"; ctx.lineWidth = 1.5;
    ctx.beginPath(); g.path.forEach(([x, y], k) => (k ? ctx.lineTo(x, y) : ctx.moveTo(x, y))); ctx.closePath();
    ctx.fill(); ctx.stroke();
  }
  if (S.hovered != null) {
    const i = S.hovered;
    ctx.strokeStyle = "#111"; ctx.lineWidth = 1.5;
    ctx.beginPath(); ctx.arc(S.sx[i], S.sy[i], RADIUS + 3, 0, 2 * Math.PI); ctx.stroke();
  }
}

function hint(S) {
  const el = S.root.querySelector(".llm-hint");
  const k = S.nSelected, hidden = S.hidden.size;
  el.textContent = (k ? `${k.toLocaleString("en-US")} picked · shift adds to the pick, a double-click clears it. ` : "") +
    (hidden ? `${hidden} class${hidden > 1 ? "es" : ""} hidden (click the legend to show). ` : "") +
    "Wheel or Zoom to zoom in, Reset view (or double-click) to see everything.";
}

// ---- interaction ------------------------------------------------------------------------------

function local(S, e) {
  const r = S.over.getBoundingClientRect();
  return [e.clientX - r.left, e.clientY - r.top];
}

function nearest(S, px, py) {
  let best = null, bd = HIT * HIT;
  for (let i = 0; i < S.n; i++) {
    if (S.hidden.has(S.labels[i])) continue;
    const dx = S.sx[i] - px, dy = S.sy[i] - py, dd = dx * dx + dy * dy;
    if (dd <= bd) { bd = dd; best = i; }
  }
  return best;
}

function hover(S, e) {
  let i = null, k = null, at = null;
  if (e) {
    const [px, py] = local(S, e);
    if (px >= M.l && px <= S.w - M.r && py >= M.t && py <= S.h - M.b) {
      at = { x: ix(S, px), y: iy(S, py) };
      k = nearestStep(S, px, py); // a step of the walk sits on top of the dots
      if (k == null) i = nearest(S, px, py);
    }
  }
  const changed = i !== S.hovered || k !== S.step;
  S.hovered = i;
  S.step = k;
  S.root.dataset.step = k == null ? "" : String(k);
  if (changed) overlay(S);
  S.root.dataset.hovered = i == null ? "" : String(i);
  window.dispatchEvent(new CustomEvent("latent-lab-map-hover", {
    detail: at == null ? null : { key: S.d.key || "map", index: i, name: i == null ? "" : S.d.names[S.labels[i]] || "",
                                  x: at.x, y: at.y, clientX: e.clientX, clientY: e.clientY },
  }));
}

function down(S, e) {
  if (e.button !== 0) return;
  e.preventDefault();
  S.over.setPointerCapture(e.pointerId);
  const [x, y] = local(S, e);
  S.drag = { kind: S.mode, x0: x, y0: y, x1: x, y1: y, moved: false, path: [[x, y]], view: { ...S.view },
             add: e.shiftKey };
  if (S.mode === "pan") S.over.style.cursor = "grabbing";
  hover(S, null);
}

function move(S, e) {
  const g = S.drag;
  const [x, y] = local(S, e);
  g.x1 = x; g.y1 = y;
  if (Math.abs(x - g.x0) + Math.abs(y - g.y0) > 4) g.moved = true;
  if (g.kind === "pan" && g.moved) {
    const ux = (g.view.x1 - g.view.x0) / (S.w - M.l - M.r), uy = (g.view.y1 - g.view.y0) / (S.h - M.t - M.b);
    const dx = (x - g.x0) * ux, dy = (y - g.y0) * uy;
    S.view = { x0: g.view.x0 - dx, x1: g.view.x1 - dx, y0: g.view.y0 + dy, y1: g.view.y1 + dy };
    draw(S);
    return;
  }
  if (g.kind === "lasso") g.path.push([x, y]);
  overlay(S);
}

function up(S, e) {
  const g = S.drag;
  if (!g) return;
  S.drag = null;
  if (S.mode === "pan") S.over.style.cursor = "grab";
  if (!g.moved) { // a click: pick the dot under the mouse, if any (shift: add it to the pick); else the point
    const i = nearest(S, g.x0, g.y0);
    if (i != null && canPick(S)) select(S, [i], g.add);
    else if (i == null && S.d.space) clickSpace(S, ix(S, g.x0), iy(S, g.y0));
    overlay(S);
    return;
  }
  if (g.kind === "zoom") {
    const x0 = Math.min(g.x0, g.x1), x1 = Math.max(g.x0, g.x1), y0 = Math.min(g.y0, g.y1), y1 = Math.max(g.y0, g.y1);
    if (x1 - x0 > 6 && y1 - y0 > 6) S.view = fit(S, { x0: ix(S, x0), x1: ix(S, x1), y0: iy(S, y1), y1: iy(S, y0) });
    draw(S);
    viewMoved(S);
  } else if (g.kind === "box") {
    const x0 = Math.min(g.x0, g.x1), x1 = Math.max(g.x0, g.x1), y0 = Math.min(g.y0, g.y1), y1 = Math.max(g.y0, g.y1);
    const out = [];
    for (let i = 0; i < S.n; i++) {
      if (!S.hidden.has(S.labels[i]) && S.sx[i] >= x0 && S.sx[i] <= x1 && S.sy[i] >= y0 && S.sy[i] <= y1) out.push(i);
    }
    select(S, out, g.add);
  } else if (g.kind === "lasso") {
    const p = g.path, out = [];
    for (let i = 0; i < S.n; i++) {
      if (S.hidden.has(S.labels[i])) continue;
      const x = S.sx[i], y = S.sy[i];
      let inside = false;
      for (let a = 0, b = p.length - 1; a < p.length; b = a++) {
        if ((p[a][1] > y) !== (p[b][1] > y) && x < ((p[b][0] - p[a][0]) * (y - p[a][1])) / (p[b][1] - p[a][1]) + p[a][0]) inside = !inside;
      }
      if (inside) out.push(i);
    }
    select(S, out, g.add);
  } else {
    if (g.kind === "pan") viewMoved(S);
    overlay(S);
  }
}

function wheel(S, e) {
  e.preventDefault();
  const [px, py] = local(S, e);
  const f = Math.exp(Math.max(-0.5, Math.min(0.5, e.deltaY * 0.0015)));
  const cx = ix(S, px), cy = iy(S, py), v = S.view;
  S.view = { x0: cx - (cx - v.x0) * f, x1: cx + (v.x1 - cx) * f, y0: cy - (cy - v.y0) * f, y1: cy + (v.y1 - cy) * f };
  draw(S);
  viewMoved(S);
}

// ---- empty space, marks, the layer --------------------------------------------------------------

function clickSpace(S, x, y) {
  clearTimeout(S.spaceTimer);
  S.spaceTimer = setTimeout(() => setPoint(S, { x, y }), CLICK_MS); // a double-click cancels it
}

function setPoint(S, p) {
  S.point = p;
  S.root.dataset.point = p ? `${p.x},${p.y}` : "";
  draw(S);
  if (S.setStateValue) S.setStateValue("point", p ? { id: S.d.id, x: p.x, y: p.y } : null);
}

// New marks that fall outside the view widen it, so a mark is never off-view.
function showMarks(S, marks) {
  const v = S.view, out = (marks || []).filter(m => !(m.x >= v.x0 && m.x <= v.x1 && m.y >= v.y0 && m.y <= v.y1));
  if (!out.length) return;
  let { x0, x1, y0, y1 } = v;
  for (const m of out) { x0 = Math.min(x0, m.x); x1 = Math.max(x1, m.x); y0 = Math.min(y0, m.y); y1 = Math.max(y1, m.y); }
  const px = (x1 - x0) * 0.06, py = (y1 - y0) * 0.06;
  S.view = fit(S, { x0: x0 - px, x1: x1 + px, y0: y0 - py, y1: y1 + py });
  viewMoved(S);
}

// The view has changed: with the layer on, ask for the layer of the view once it has settled.
function viewMoved(S, now = false) {
  if (!S.d || !S.d.layer || !S.view) return;
  clearTimeout(S.viewTimer);
  const ask = () => {
    if (!S.root) return;
    const v = S.view, msg = { key: S.d.key || "map", id: S.d.id, view: [[v.x0, v.x1], [v.y0, v.y1]] };
    (window.__latentLabViews = window.__latentLabViews || {})[msg.key] = msg; // for a channel not mounted yet
    S.root.dataset.layerAsked = String((Number(S.root.dataset.layerAsked) || 0) + 1);
    window.dispatchEvent(new CustomEvent("latent-lab-map-view", { detail: msg }));
  };
  if (now) ask(); else S.viewTimer = setTimeout(ask, SETTLE_MS);
}

function setLayer(S, L) {
  S.layer = L;
  S.root.dataset.layer = L && L.id === S.d.id ? JSON.stringify(L.view) : "";
  draw(S);
}

// colorBy: the dots grouped by value, highest first (so the lowest are drawn on top); and its colour bar.
function colorBy(S, c) {
  const bar = S.root.querySelector(".llm-scale");
  S.byValue = null;
  bar.hidden = !c;
  if (!c) return;
  const v = decode(c.values, Uint8Array), max = Math.max(1, c.max | 0);
  S.byValue = Array.from({ length: max + 1 }, () => []);
  for (let i = 0; i < Math.min(S.n, v.length); i++) S.byValue[max - Math.min(v[i], max)].push(i);
  const stops = SCALE.map((col, k) => `${col} ${((k / (SCALE.length - 1)) * 100).toFixed(0)}%`).join(", ");
  bar.innerHTML = `<span>0</span><span class="llm-bar-grad" style="background:linear-gradient(to right, ${stops})">` +
    `</span><span>${max}</span><span class="llm-scale-label"></span>`;
  bar.querySelector(".llm-scale-label").textContent = c.label || "";
}

function select(S, indices, add = false) {
  if (!add) S.selected.fill(0);
  for (const i of indices) S.selected[i] = 1;
  const all = [];
  for (let i = 0; i < S.n; i++) if (S.selected[i]) all.push(i);
  S.nSelected = all.length;
  draw(S);
  if (S.setStateValue) S.setStateValue("selection", { id: S.d.id, indices: all });
}

// Python's pick for a map the user has not picked on yet: shown unless it is already what is drawn.
function showPicks(S, indices) {
  const want = new Uint8Array(S.n);
  for (const i of indices) if (i >= 0 && i < S.n) want[i] = 1;
  let same = true;
  for (let i = 0; i < S.n && same; i++) same = want[i] === S.selected[i];
  if (same) return;
  S.selected = want;
  S.nSelected = want.reduce((a, b) => a + b, 0);
}

function savePng(S) {
  const scale = 2, c = document.createElement("canvas");
  c.width = S.w * scale; c.height = S.h * scale;
  const ctx = c.getContext("2d");
  ctx.scale(scale, scale);
  paint(S, ctx, S.w, S.h); // the same view and size in CSS pixels, drawn at twice the resolution
  c.toBlob(blob => {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `${S.d.filename || "latent-map"}.png`;
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }, "image/png");
}

export default function (component) {
  const { parentElement, setStateValue } = component;
  const data = component.data && component.data.json ? JSON.parse(component.data.json) : null;
  const S = parentElement.__llMap || (parentElement.__llMap = {});
  S.setStateValue = setStateValue;
  if (!S.root || !S.root.isConnected) { build(S, parentElement); S.loaded = null; }
  if (!data) return;
  const fresh = !S.d || S.loaded !== data.id || S.d.n !== data.n;
  const hadLayer = !fresh && S.d.layer, oldMarks = fresh ? null : JSON.stringify(S.d.marks || []);
  S.d = data;
  if (fresh) {
    S.loaded = data.id;
    S.w = 0;
    size(S);
    load(S, data);
  } else {
    size(S);
  }
  S.root.querySelectorAll("[data-pick]").forEach(b => { b.hidden = !canPick(S); });
  if (!canPick(S) && (S.mode === "box" || S.mode === "lasso")) setMode(S, "zoom");
  if (!data.path) S.pathXY = null;
  if (data.picks && canPick(S)) showPicks(S, data.picks);
  const colorKey = data.colorBy ? data.colorBy.values + data.colorBy.max + data.colorBy.label : "";
  if (colorKey !== S.colorKey) { S.colorKey = colorKey; colorBy(S, data.colorBy); }
  if (data.space) {
    S.point = data.point ? { x: data.point.x, y: data.point.y } : null;
    S.root.dataset.point = S.point ? `${S.point.x},${S.point.y}` : "";
  }
  if (!fresh && JSON.stringify(data.marks || []) !== oldMarks) showMarks(S, data.marks);
  if (!data.layer && window.__latentLabViews) delete window.__latentLabViews[data.key || "map"]; // no stale asks
  const L = (window.__latentLabLayers || {})[data.key || "map"];
  S.layer = data.layer && L && L.id === data.id && L.img ? L : null;
  S.root.dataset.layer = S.layer ? JSON.stringify(S.layer.view) : "";
  draw(S);
  if (data.layer && !hadLayer) viewMoved(S, true); // just switched on (or a new map): ask at once
  (window.__latentLabMaps = window.__latentLabMaps || {})[data.key || "map"] = {
    // For tests and benchmarks: where digit i is on the screen, and what is picked.
    toClient: i => { const r = S.over.getBoundingClientRect(); return { x: r.left + S.sx[i], y: r.top + S.sy[i] }; },
    // Where a point in data coordinates is on the screen.
    dataToClient: (x, y) => { const r = S.over.getBoundingClientRect(); return { x: r.left + tx(S, x), y: r.top + ty(S, y) }; },
    n: () => S.n, picked: () => S.nSelected, state: S,
    view: () => ({ ...S.view }),
    setLayer: L2 => setLayer(S, L2),
    pathLength: () => (S.d.path ? S.d.path.x.length : 0),
    stepClient: k => { const r = S.over.getBoundingClientRect(); return { x: r.left + S.pathXY[0][k], y: r.top + S.pathXY[1][k] }; },
  };
  return () => {
    if (S.resize) S.resize.disconnect();
    clearTimeout(S.viewTimer);
    clearTimeout(S.spaceTimer);
    S.root = null;
  };
}
