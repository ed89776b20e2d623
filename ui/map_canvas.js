// Latent map scatter: every test digit as a dot on a 2-D canvas, with zoom, pan, click, box and
// lasso picks, a clickable legend, an optional interpolation path on top and a PNG export.
//
// Why not plotly: in a browser without a GPU (a classroom laptop, this project's CI machine)
// plotly's WebGL scatter costs 0.6-1 s of main-thread time per redraw (software GL, read back for
// compositing) plus 1.5 s to load plotly.js the first time; a 2-D canvas draws the 10,000 dots in
// about 10 ms. Streamlit hands this module `data` as {json: "<the map as one JSON string>"} (see
// ui/map_canvas.py for why), which parses to
//   {id, n, x, y, xr, yr, labels, names, colors, axes, region, equal, height, filename, pick, path, picks}
// x, y: base64 uint16 positions quantised over the ranges xr, yr; labels: base64 uint8 classes.
// pick: false for a map that only shows (no picks: Box select and Lasso are hidden, a click does
// nothing). path: null, or {x, y, colors, text} for the steps of a walk drawn over the dots (a line
// with a marker per step, stars at its ends); hovering a step shows its text. The path may change
// while the map stays (same id): the view is kept. picks: null, or the test-set indices to show as
// picked while the user has not picked on this map (the session's pick, kept across pages and
// methods, or a lesson link's): drawn as a pick, not reported back.
// The module is called again on every rerun with the same parentElement: everything it keeps lives
// on that element. A new map (`id` changes) resets the view and the pick; the same map keeps both.
//
// Out: setStateValue("selection", {id, indices}) when digits are picked (a click, a box, a lasso;
// with shift held they add to the pick) or the pick is cleared (double-click). Hovering a dot dispatches a window event
// "latent-lab-map-hover" with {index, name, clientX, clientY} (null detail: nothing hovered), which
// ui/map_hover.js turns into the card with the digit's picture.

const M = { l: 58, r: 14, t: 12, b: 46 }; // plot margins, CSS px
const HIT = 10; // px: how near a dot the mouse must be to hover or click it
const RADIUS = 2.2;

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
    `<div class="llm-hint" data-testid="ll-map-hint"></div>`;
  parent.appendChild(root);
  S.root = root;
  S.plot = root.querySelector(".llm-plot");
  S.base = root.querySelector(".llm-base");
  S.over = root.querySelector(".llm-over");
  S.mode = S.mode || "zoom";
  root.querySelectorAll("[data-mode]").forEach(b => b.addEventListener("click", () => setMode(S, b.dataset.mode)));
  root.querySelector('[data-act="reset"]').addEventListener("click", () => { resetView(S); draw(S); });
  root.querySelector('[data-act="png"]').addEventListener("click", () => savePng(S));
  const over = S.over;
  // Pointer events: a mouse, a pen or a finger (a class on tablets). The canvas captures the
  // pointer while a drag lasts, so a drag that leaves the map still ends where it should.
  over.addEventListener("pointerdown", e => down(S, e));
  over.addEventListener("pointermove", e => (S.drag ? move(S, e) : hover(S, e)));
  over.addEventListener("pointerup", e => up(S, e));
  over.addEventListener("pointercancel", () => { S.drag = null; overlay(S); });
  over.addEventListener("pointerleave", () => { if (!S.drag) hover(S, null); });
  over.addEventListener("dblclick", e => { e.preventDefault(); resetView(S); if (canPick(S)) select(S, []); else draw(S); });
  over.addEventListener("wheel", e => wheel(S, e), { passive: false });
  S.resize = new ResizeObserver(() => { if (size(S)) draw(S); });
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
  const picking = S.nSelected > 0;
  let drawn = 0;
  for (const pass of picking ? [0, 1] : [1]) { // with a pick: the others faint first, the picked on top
    S.byClass.forEach((idx, c) => {
      if (S.hidden.has(c)) return;
      ctx.fillStyle = d.colors[c % d.colors.length];
      ctx.globalAlpha = picking ? (pass ? 0.95 : 0.12) : 0.75;
      ctx.beginPath();
      for (const i of idx) {
        if (picking && S.selected[i] !== pass) continue;
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
  ctx.restore();
  ctx.strokeStyle = "#bbb"; ctx.lineWidth = 1;
  ctx.strokeRect(pl + 0.5, pt + 0.5, pr - pl - 1, pb - pt - 1);
  return { drawn, ms: performance.now() - t0 };
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
  let i = null, k = null;
  if (e) {
    const [px, py] = local(S, e);
    if (px >= M.l && px <= S.w - M.r && py >= M.t && py <= S.h - M.b) {
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
    detail: i == null ? null : { index: i, name: S.d.names[S.labels[i]] || "", clientX: e.clientX, clientY: e.clientY },
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
  if (!g.moved) { // a click: pick the dot under the mouse, if any (shift: add it to the pick)
    const i = canPick(S) ? nearest(S, g.x0, g.y0) : null;
    if (i != null) select(S, [i], g.add);
    overlay(S);
    return;
  }
  if (g.kind === "zoom") {
    const x0 = Math.min(g.x0, g.x1), x1 = Math.max(g.x0, g.x1), y0 = Math.min(g.y0, g.y1), y1 = Math.max(g.y0, g.y1);
    if (x1 - x0 > 6 && y1 - y0 > 6) S.view = fit(S, { x0: ix(S, x0), x1: ix(S, x1), y0: iy(S, y1), y1: iy(S, y0) });
    draw(S);
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
  draw(S);
  (window.__latentLabMaps = window.__latentLabMaps || {})[data.key || "map"] = {
    // For tests and benchmarks: where digit i is on the screen, and what is picked.
    toClient: i => { const r = S.over.getBoundingClientRect(); return { x: r.left + S.sx[i], y: r.top + S.sy[i] }; },
    n: () => S.n, picked: () => S.nSelected, state: S,
    pathLength: () => (S.d.path ? S.d.path.x.length : 0),
    stepClient: k => { const r = S.over.getBoundingClientRect(); return { x: r.left + S.pathXY[0][k], y: r.top + S.pathXY[1][k] }; },
  };
  return () => {
    if (S.resize) S.resize.disconnect();
    S.root = null;
  };
}
