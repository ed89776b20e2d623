// The latent movie: where ~2,000 test digits sat on the model's map at many moments of its training,
// played in the browser (ui/movie.py). Two modes:
//   "movie": every recorded frame, sent once; a play/pause button, a scrubber (a range input: arrow keys,
//            Home/End, Page Up/Down), the frame's epoch and test loss, and a small loss curve with the
//            frame marked (click or drag on it to seek). Playing never asks the server for anything: the
//            dots glide from frame to frame at `fps` recorded frames per second. Fixed axes over all frames.
//   "live":   one frame, the latest of a training that is still running (Train & library's job panel);
//            each new frame glides in from the previous one and the view eases to the new frame's range.
//
// Streamlit hands this module `data` as raw bytes (a Uint8Array): a uint32 (little-endian) header length,
// the header as UTF-8 JSON, a zero byte where needed to reach an even offset, then F x N x 2 uint16
// positions (frame-major: frame f, digit i, x then y) quantised over the header's ranges xr, yr (65535: off
// the view, not drawn), then N uint8 labels. Header:
//   {id, mode, n, frames, xr, yr, epoch[], loss[], step[], elapsed[], epochs, lossLabel, names, colors,
//    axes, height, fps}
// The module runs again on every rerun with the same parentElement, where all its state lives: the same
// `id` keeps the frame shown and whether it plays; a new id starts again at the first frame.
// For tests: window.__latentLabMovies[key] = {frame(), frames(), playing(), shown(), slider(), toClient(i), seek(f)}.

const M = { l: 52, r: 14, t: 12, b: 42 }; // plot margins, CSS px
const CM = { l: 52, r: 14, t: 8, b: 26 }; // the loss curve's margins
const CURVE_H = 96;
const RADIUS = 2.6;
const OFF = 65535; // a quantised coordinate off the view
const TWEEN_MS = 450; // live mode: how long a new frame takes to glide in

function parse(bytes) {
  const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const h = new DataView(u8.buffer, u8.byteOffset, u8.byteLength).getUint32(0, true);
  const head = JSON.parse(new TextDecoder().decode(u8.subarray(4, 4 + h)));
  let off = 4 + h;
  off += off & 1;
  const count = head.frames * head.n * 2;
  const q = new Uint16Array(u8.slice(off, off + count * 2).buffer); // a copy: aligned, offset 0
  const labels = u8.slice(off + count * 2, off + count * 2 + head.n);
  return { head, q, labels };
}

function niceStep(span, target) {
  const raw = span / Math.max(1, target), p = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / p;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

function ticks(lo, hi, px, every = 90) {
  const step = niceStep(hi - lo, px / every), out = [];
  if (!(step > 0) || !isFinite(step)) return out;
  const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    const at = Math.abs(v) < step * 1e-6 ? 0 : v; // never "-0.00"
    out.push([at, at.toFixed(digits)]);
  }
  return out;
}

// 0 -> "0", 0.137 -> "0.14" (the early frames are a fraction of an epoch apart), 2.96 -> "3", 3.24 -> "3.2"
function epochText(e) {
  if (e <= 0) return "0";
  if (e < 1) return e.toFixed(2);
  return Math.abs(e - Math.round(e)) < 0.05 ? Math.round(e).toFixed(0) : e.toFixed(1);
}

function build(S, parent) {
  parent.querySelectorAll(".llv-root").forEach(el => el.remove());
  if (S.resize) S.resize.disconnect();
  const root = document.createElement("div");
  root.className = "llv-root";
  root.setAttribute("data-testid", "ll-movie");
  root.innerHTML =
    `<div class="llv-legend" data-testid="ll-movie-legend"></div>` +
    `<div class="llv-plot"><canvas class="llv-canvas" data-testid="ll-movie-canvas"></canvas></div>` +
    `<div class="llv-controls">` +
    `<button class="llv-play" data-testid="ll-movie-play" type="button"></button>` +
    `<input class="llv-range" data-testid="ll-movie-scrubber" type="range" min="0" step="1" aria-label="Frame">` +
    `<select class="llv-speed" aria-label="Speed" title="Playing speed">` +
    `<option value="0.5">0.5×</option><option value="1" selected>1×</option><option value="2">2×</option></select>` +
    `</div>` +
    `<div class="llv-status" data-testid="ll-movie-status" aria-live="polite"></div>` +
    `<canvas class="llv-curve" data-testid="ll-movie-curve" title="Test loss at each frame: click or drag to go there"></canvas>`;
  parent.appendChild(root);
  S.root = root;
  S.plot = root.querySelector(".llv-plot");
  S.canvas = root.querySelector(".llv-canvas");
  S.curve = root.querySelector(".llv-curve");
  S.play = root.querySelector(".llv-play");
  S.range = root.querySelector(".llv-range");
  S.speed = root.querySelector(".llv-speed");
  S.status = root.querySelector(".llv-status");
  S.play.addEventListener("click", () => toggle(S));
  S.range.addEventListener("input", () => { stop(S); seek(S, Number(S.range.value)); });
  S.range.addEventListener("keydown", e => { if (e.key === " ") { e.preventDefault(); toggle(S); } });
  const curveAt = e => {
    const r = S.curve.getBoundingClientRect();
    stop(S);
    seek(S, nearestFrame(S, e.clientX - r.left));
  };
  S.curve.addEventListener("pointerdown", e => { S.curveDrag = true; S.curve.setPointerCapture(e.pointerId); curveAt(e); });
  S.curve.addEventListener("pointermove", e => { if (S.curveDrag) curveAt(e); });
  S.curve.addEventListener("pointerup", () => { S.curveDrag = false; });
  S.resize = new ResizeObserver(() => { if (size(S)) draw(S); });
  S.resize.observe(S.plot);
}

function legend(S) {
  const box = S.root.querySelector(".llv-legend");
  box.innerHTML = "";
  S.head.names.forEach((name, c) => {
    const item = document.createElement("button");
    item.type = "button";
    item.className = "llv-item";
    item.title = "Hide or show this class";
    item.innerHTML = `<span class="llv-dot" style="background:${S.head.colors[c % S.head.colors.length]}"></span>`;
    item.appendChild(document.createTextNode(name));
    item.classList.toggle("off", S.hidden.has(c));
    item.addEventListener("click", () => {
      if (S.hidden.has(c)) S.hidden.delete(c); else S.hidden.add(c);
      item.classList.toggle("off", S.hidden.has(c));
      draw(S);
    });
    box.appendChild(item);
  });
}

// ---- geometry -----------------------------------------------------------------------------------

function size(S) {
  const w = Math.max(160, Math.round(S.plot.clientWidth)), h = S.head.height;
  if (w === S.w && h === S.h) return false;
  S.w = w; S.h = h;
  const dpr = window.devicePixelRatio || 1;
  const fit = (c, cw, ch) => {
    c.width = Math.round(cw * dpr); c.height = Math.round(ch * dpr);
    c.style.width = `${cw}px`; c.style.height = `${ch}px`;
    c.getContext("2d").setTransform(dpr, 0, 0, dpr, 0, 0);
  };
  fit(S.canvas, w, h);
  S.plot.style.height = `${h}px`;
  if (S.head.mode === "movie") fit(S.curve, w, CURVE_H);
  return true;
}

// Equal units on both axes: the narrower span widens to the plot's shape.
function fitView(S, xr, yr) {
  const pw = S.w - M.l - M.r, ph = S.h - M.t - M.b;
  const u = Math.max((xr[1] - xr[0]) / pw, (yr[1] - yr[0]) / ph);
  const cx = (xr[0] + xr[1]) / 2, cy = (yr[0] + yr[1]) / 2;
  return { x0: cx - u * pw / 2, x1: cx + u * pw / 2, y0: cy - u * ph / 2, y1: cy + u * ph / 2 };
}

function tx(S, v, x) { return M.l + (x - v.x0) / (v.x1 - v.x0) * (S.w - M.l - M.r); }
function ty(S, v, y) { return M.t + (v.y1 - y) / (v.y1 - v.y0) * (S.h - M.t - M.b); }

// Frame f's positions in data coordinates, NaN where the digit is off the view.
function framePoints(S, f, xr, yr) {
  const n = S.head.n, q = S.q, x = new Float32Array(n), y = new Float32Array(n);
  const sx = (xr[1] - xr[0]) / 65534, sy = (yr[1] - yr[0]) / 65534;
  for (let i = 0, k = f * n * 2; i < n; i++, k += 2) {
    const a = q[k], b = q[k + 1];
    x[i] = a === OFF || b === OFF ? NaN : xr[0] + a * sx;
    y[i] = a === OFF || b === OFF ? NaN : yr[0] + b * sy;
  }
  return { x, y };
}

// ---- drawing ------------------------------------------------------------------------------------

function draw(S) {
  if (!S.head || !S.w) return;
  const movie = S.head.mode === "movie";
  let x, y, view, epoch;
  if (movie) {
    const t = Math.max(0, Math.min(S.F - 1, S.t)), f = Math.floor(t), a = t - f;
    const A = S.frameXY[f], B = S.frameXY[Math.min(S.F - 1, f + 1)];
    x = new Float32Array(S.head.n); y = new Float32Array(S.head.n);
    for (let i = 0; i < S.head.n; i++) { x[i] = A.x[i] + (B.x[i] - A.x[i]) * a; y[i] = A.y[i] + (B.y[i] - A.y[i]) * a; }
    view = S.view;
    epoch = S.head.epoch[f] + (S.head.epoch[Math.min(S.F - 1, f + 1)] - S.head.epoch[f]) * a;
  } else {
    const a = S.tween ? S.tween.a : 1, P = S.tween ? S.tween.from : null, C = S.live;
    x = C.x; y = C.y;
    if (P && a < 1) {
      x = new Float32Array(S.head.n); y = new Float32Array(S.head.n);
      for (let i = 0; i < S.head.n; i++) {
        const ok = isFinite(P.x[i]);
        x[i] = ok ? P.x[i] + (C.x[i] - P.x[i]) * a : C.x[i]; y[i] = ok ? P.y[i] + (C.y[i] - P.y[i]) * a : C.y[i];
      }
    }
    const V = S.tween ? S.tween.view : null, T = S.liveView;
    view = V && a < 1 ? { x0: V.x0 + (T.x0 - V.x0) * a, x1: V.x1 + (T.x1 - V.x1) * a,
                          y0: V.y0 + (T.y0 - V.y0) * a, y1: V.y1 + (T.y1 - V.y1) * a } : T;
    epoch = S.head.epoch[0];
  }
  S.sx = new Float32Array(S.head.n); S.sy = new Float32Array(S.head.n);
  paint(S, S.canvas.getContext("2d"), x, y, view, epoch);
  if (movie) { paintCurve(S); status(S); }
  S.root.dataset.frame = movie ? String(S.frame) : "0";
}

function paint(S, ctx, x, y, view, epoch) {
  const d = S.head, w = S.w, h = S.h;
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, w, h);
  const pl = M.l, pt = M.t, pr = w - M.r, pb = h - M.b;
  ctx.font = "12px 'Source Sans Pro', sans-serif";
  ctx.strokeStyle = "#ececf0"; ctx.lineWidth = 1; ctx.fillStyle = "#555";
  ctx.textAlign = "center"; ctx.textBaseline = "top";
  for (const [v, s] of ticks(view.x0, view.x1, pr - pl)) {
    const p = Math.round(tx(S, view, v)) + 0.5;
    ctx.beginPath(); ctx.moveTo(p, pt); ctx.lineTo(p, pb); ctx.stroke();
    ctx.fillText(s, p, pb + 5);
  }
  ctx.textAlign = "right"; ctx.textBaseline = "middle";
  for (const [v, s] of ticks(view.y0, view.y1, pb - pt)) {
    const p = Math.round(ty(S, view, v)) + 0.5;
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
  for (let i = 0; i < d.n; i++) { S.sx[i] = tx(S, view, x[i]); S.sy[i] = ty(S, view, y[i]); }
  ctx.globalAlpha = 0.8;
  S.byClass.forEach((idx, c) => {
    if (S.hidden.has(c)) return;
    ctx.fillStyle = d.colors[c % d.colors.length];
    ctx.beginPath();
    for (const i of idx) {
      const px = S.sx[i], py = S.sy[i];
      if (!(px > pl - 4 && px < pr + 4 && py > pt - 4 && py < pb + 4)) continue; // NaN fails too
      ctx.moveTo(px + RADIUS, py); ctx.arc(px, py, RADIUS, 0, 2 * Math.PI);
    }
    ctx.fill();
  });
  ctx.globalAlpha = 1;
  // the epoch, large in the corner: the one number a class reads from across the room
  ctx.font = "600 16px 'Source Sans Pro', sans-serif"; ctx.textAlign = "left"; ctx.textBaseline = "top";
  const label = `epoch ${epochText(epoch)}`;
  ctx.lineWidth = 4; ctx.strokeStyle = "rgba(255,255,255,0.9)"; ctx.strokeText(label, pl + 8, pt + 6);
  ctx.fillStyle = "#31333f"; ctx.fillText(label, pl + 8, pt + 6);
  ctx.restore();
  ctx.strokeStyle = "#bbb"; ctx.lineWidth = 1;
  ctx.strokeRect(pl + 0.5, pt + 0.5, pr - pl - 1, pb - pt - 1);
}

// The test loss at every frame against the epoch, the current frame marked.
function curveX(S, e) { const E = S.head.epoch, hi = Math.max(E[E.length - 1], 1e-9); return CM.l + (e / hi) * (S.w - CM.l - CM.r); }

function paintCurve(S) {
  const d = S.head, ctx = S.curve.getContext("2d"), w = S.w, h = CURVE_H;
  const L = d.loss.filter(v => isFinite(v));
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, w, h);
  if (!L.length) return;
  let lo = Math.min(...L), hi = Math.max(...L);
  if (!(hi > lo)) { lo -= 1; hi += 1; }
  const pad = (hi - lo) * 0.08, y0 = lo - pad, y1 = hi + pad;
  const py = v => CM.t + (y1 - v) / (y1 - y0) * (h - CM.t - CM.b);
  ctx.font = "11px 'Source Sans Pro', sans-serif"; ctx.fillStyle = "#555"; ctx.strokeStyle = "#ececf0"; ctx.lineWidth = 1;
  ctx.textAlign = "right"; ctx.textBaseline = "middle";
  for (const [v, s] of ticks(y0, y1, h - CM.t - CM.b, 28)) {
    const p = Math.round(py(v)) + 0.5;
    ctx.beginPath(); ctx.moveTo(CM.l, p); ctx.lineTo(w - CM.r, p); ctx.stroke();
    ctx.fillText(s, CM.l - 6, p);
  }
  ctx.textAlign = "center"; ctx.textBaseline = "top";
  const E = d.epoch;
  for (const [v, s] of ticks(0, E[E.length - 1] || 1, w - CM.l - CM.r)) ctx.fillText(s, curveX(S, v), h - CM.b + 4);
  ctx.textAlign = "left"; ctx.textBaseline = "bottom"; ctx.fillStyle = "#333";
  ctx.fillText(`test ${d.lossLabel} (nats) against epochs`, CM.l + 4, h - 1);
  ctx.strokeStyle = "#ff7f0e"; ctx.lineWidth = 2; ctx.lineJoin = "round"; // the training panel's test colour
  ctx.beginPath();
  let started = false;
  for (let f = 0; f < S.F; f++) {
    if (!isFinite(d.loss[f])) continue;
    const X = curveX(S, E[f]), Y = py(d.loss[f]);
    if (started) ctx.lineTo(X, Y); else { ctx.moveTo(X, Y); started = true; }
  }
  ctx.stroke();
  const X = curveX(S, E[S.frame]);
  ctx.strokeStyle = "rgba(49,51,63,0.45)"; ctx.lineWidth = 1;
  ctx.beginPath(); ctx.moveTo(X + 0.5, CM.t); ctx.lineTo(X + 0.5, h - CM.b); ctx.stroke();
  if (isFinite(d.loss[S.frame])) {
    ctx.fillStyle = "#ff7f0e"; ctx.strokeStyle = "#fff"; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.arc(X, py(d.loss[S.frame]), 5, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
  }
}

function nearestFrame(S, px) {
  let best = 0, bd = Infinity;
  for (let f = 0; f < S.F; f++) { const dd = Math.abs(curveX(S, S.head.epoch[f]) - px); if (dd < bd) { bd = dd; best = f; } }
  return best;
}

function frameText(S, f) {
  const d = S.head, loss = d.loss[f];
  return `epoch ${epochText(d.epoch[f])} of ${epochText(d.epochs)} · test ${d.lossLabel} ` +
    (isFinite(loss) ? `${loss.toFixed(1)} nats` : "not measured");
}

function status(S) {
  const f = S.frame, text = frameText(S, f);
  let off = 0;
  const A = S.frameXY[f];
  for (let i = 0; i < S.head.n; i++) if (!isFinite(A.x[i])) off++;
  S.status.textContent = `Frame ${f + 1} of ${S.F} · ${text}` + (f === 0 ? " (untrained)" : "") +
    (off ? ` · ${off} digit${off > 1 ? "s" : ""} off the edge` : "");
  S.range.setAttribute("aria-valuetext", `frame ${f + 1} of ${S.F}, ${text}`);
}

// ---- playing ------------------------------------------------------------------------------------

function seek(S, f) {
  S.frame = Math.max(0, Math.min(S.F - 1, Math.round(f)));
  S.t = S.frame;
  S.range.value = String(S.frame);
  draw(S);
}

function stop(S) {
  if (S.raf) cancelAnimationFrame(S.raf);
  S.raf = null;
  S.playing = false;
  if (S.play) { S.play.textContent = "▶ Play"; S.play.setAttribute("aria-label", "Play"); }
  if (S.root) S.root.dataset.playing = "";
}

function toggle(S) {
  if (S.playing) { stop(S); seek(S, Math.round(S.t)); return; }
  if (S.F < 2) return;
  if (S.frame >= S.F - 1) seek(S, 0); // at the end: from the start again
  S.playing = true;
  S.play.textContent = "❚❚ Pause"; S.play.setAttribute("aria-label", "Pause");
  S.root.dataset.playing = "1";
  let last = null;
  const tick = now => {
    if (!S.playing) return;
    // rAF's timestamp is when the frame began, which can be before the click: time counts from the first
    // tick, never backwards, and a stalled tab catches up at most a quarter of a second at a time
    const dt = last === null ? 0 : Math.max(0, Math.min(0.25, (now - last) / 1000));
    last = now;
    S.t = Math.max(0, Math.min(S.F - 1, S.t + dt * (S.head.fps || 6) * Number(S.speed.value || 1)));
    const f = Math.floor(S.t + 1e-9);
    if (f !== S.frame) { S.frame = f; S.range.value = String(f); }
    draw(S);
    if (S.t >= S.F - 1) { stop(S); seek(S, S.F - 1); return; }
    S.raf = requestAnimationFrame(tick);
  };
  S.raf = requestAnimationFrame(tick);
}

function loadMovie(S) {
  S.F = S.head.frames;
  S.frameXY = [];
  for (let f = 0; f < S.F; f++) S.frameXY.push(framePoints(S, f, S.head.xr, S.head.yr));
  S.range.max = String(Math.max(0, S.F - 1));
  S.view = fitView(S, S.head.xr, S.head.yr);
  seek(S, 0);
}

// live: the new frame glides in from what is drawn, the view eases to the new frame's range
function loadLive(S, sameJob) {
  const next = framePoints(S, 0, S.head.xr, S.head.yr), target = fitView(S, S.head.xr, S.head.yr);
  if (sameJob && S.live) {
    S.tween = { from: S.live, view: S.liveView, a: 0, start: performance.now() };
    S.live = next; S.liveView = target;
    const step = now => {
      if (!S.tween) return;
      const r = Math.max(0, Math.min(1, (now - S.tween.start) / TWEEN_MS)); // rAF time can precede start
      S.tween.a = r * r * (3 - 2 * r);
      draw(S);
      if (r < 1) S.raf = requestAnimationFrame(step); else { S.tween = null; S.raf = null; }
    };
    if (S.raf) cancelAnimationFrame(S.raf);
    S.raf = requestAnimationFrame(step);
  } else {
    S.tween = null; S.live = next; S.liveView = target;
  }
  draw(S);
}

export default function (component) {
  const { parentElement, data } = component;
  const S = parentElement.__llMovie || (parentElement.__llMovie = {});
  if (!S.root || !S.root.isConnected) { build(S, parentElement); S.id = null; S.stamp = null; }
  if (!data) return;
  const { head, q, labels } = parse(data);
  const stamp = `${head.id}|${head.frames}|${head.step.join(",")}|${data.byteLength}`;
  if (stamp === S.stamp) return () => cleanup(S); // a rerun with the same movie: keep the frame and the play
  const sameId = S.id === head.id;
  S.stamp = stamp; S.id = head.id;
  S.head = head; S.q = q; S.labels = labels;
  S.byClass = head.names.map(() => []);
  for (let i = 0; i < head.n; i++) if (S.byClass[labels[i]]) S.byClass[labels[i]].push(i);
  if (!sameId) S.hidden = new Set();
  S.root.dataset.mode = head.mode;
  S.root.querySelector(".llv-controls").hidden = head.mode !== "movie";
  S.status.hidden = S.curve.hidden = head.mode !== "movie";
  legend(S);
  S.w = 0;
  size(S);
  if (head.mode === "movie") { stop(S); loadMovie(S); } else loadLive(S, sameId);
  (window.__latentLabMovies = window.__latentLabMovies || {})[head.key || "movie"] = {
    frame: () => S.frame, frames: () => S.F, playing: () => !!S.playing, shown: () => S.t, slider: () => Number(S.range.value),
    toClient: i => { const r = S.canvas.getBoundingClientRect(); return { x: r.left + S.sx[i], y: r.top + S.sy[i] }; },
    seek: f => { stop(S); seek(S, f); },
  };
  return () => cleanup(S);
}

// Streamlit calls the latest cleanup once, when the component goes away (another page, the expander
// closed), never between reruns.
function cleanup(S) {
  stop(S);
  if (S.resize) S.resize.disconnect();
  S.root = null;
}
