// Drawing pad: a black square with white ink, like an MNIST digit, drawn with a mouse, a pen or a
// finger (pointer events; touch-action: none, so a finger draws instead of scrolling the page).
//
// Streamlit hands this module `data` as {json: "<JSON text>"} (see ui/draw_pad.py), which parses to
//   {size, pen, init: {id, strokes} | null}
// size: the pad's side in pad pixels (the coordinates reported), pen: the pen's width in pad pixels
// (what vae/drawing.py draws with), init: strokes to show when the pad is first built (the session's
// last drawing, when the page is opened again).
// Out: setStateValue("drawing", "<JSON text of {size, strokes, rev}>") when a stroke ends, on Undo and
// on Clear, never while drawing (each report reruns the page). strokes: [[[x, y], ...], ...], rounded
// to a tenth of a pixel, points closer than MIN_STEP to the last one dropped, at most MAX_POINTS.
// The module is called again on every rerun with the same parentElement: what it keeps lives there,
// so a rerun never interrupts a stroke.

const MAX_POINTS = 2000; // all strokes together (vae/drawing.py reads up to twice as many)
const MAX_STROKES = 60;
const MIN_STEP = 1.5; // pad px

function total(S) {
  return S.strokes.reduce((n, s) => n + s.length, 0);
}

function say(S, text) {
  S.msg.textContent = text;
}

function paint(S) {
  const { ctx, canvas } = S;
  const k = canvas.width / S.size;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.setTransform(k, 0, 0, k, 0, 0);
  ctx.strokeStyle = ctx.fillStyle = "#fff";
  ctx.lineWidth = S.pen;
  ctx.lineCap = ctx.lineJoin = "round";
  for (const s of S.strokes) {
    if (s.length === 1) {
      ctx.beginPath();
      ctx.arc(s[0][0], s[0][1], S.pen / 2, 0, 2 * Math.PI);
      ctx.fill();
      continue;
    }
    ctx.beginPath();
    ctx.moveTo(s[0][0], s[0][1]);
    for (let i = 1; i < s.length; i++) ctx.lineTo(s[i][0], s[i][1]);
    ctx.stroke();
  }
  S.root.querySelector('[data-act="undo"]').disabled = !S.strokes.length;
  S.root.querySelector('[data-act="clear"]').disabled = !S.strokes.length;
  S.root.dataset.strokes = String(S.strokes.length);
}

function point(S, e) {
  const r = S.canvas.getBoundingClientRect();
  const f = S.size / Math.max(1, r.width);
  const clamp = v => Math.round(Math.min(S.size, Math.max(0, v)) * 10) / 10;
  return [clamp((e.clientX - r.left) * f), clamp((e.clientY - r.top) * f)];
}

function report(S) {
  S.rev = (S.rev || 0) + 1;
  S.root.dataset.rev = String(S.rev);
  if (S.setStateValue) S.setStateValue("drawing", JSON.stringify({ size: S.size, strokes: S.strokes, rev: S.rev }));
}

function down(S, e) {
  if (e.pointerType === "mouse" && e.button !== 0) return;
  e.preventDefault();
  if (S.strokes.length >= MAX_STROKES || total(S) >= MAX_POINTS) {
    say(S, "The pad is full: Undo or Clear to draw more.");
    return;
  }
  // Captured, so a stroke that leaves the pad still ends where it should (and is kept at its edge).
  try { S.canvas.setPointerCapture(e.pointerId); } catch (err) { /* a pointer the browser no longer knows */ }
  S.active = e.pointerId;
  S.current = [point(S, e)];
  S.strokes.push(S.current);
  say(S, "");
  paint(S);
}

function move(S, e) {
  if (S.current === null || e.pointerId !== S.active) return;
  e.preventDefault();
  // A pen reports more positions than animation frames: take them all, for a smooth line.
  const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
  let added = false;
  for (const ev of events.length ? events : [e]) {
    if (total(S) >= MAX_POINTS) { say(S, "The pad is full: this stroke ends here."); break; }
    const p = point(S, ev), last = S.current[S.current.length - 1];
    if (Math.hypot(p[0] - last[0], p[1] - last[1]) >= MIN_STEP) { S.current.push(p); added = true; }
  }
  if (added) paint(S);
}

function up(S, e) {
  if (S.current === null || e.pointerId !== S.active) return;
  S.current = null;
  S.active = null;
  paint(S);
  report(S);
}

function build(S, parent) {
  parent.querySelectorAll(".ll-pad").forEach(el => el.remove());
  const root = document.createElement("div");
  root.className = "ll-pad";
  root.setAttribute("data-testid", "ll-draw-pad");
  root.innerHTML =
    `<canvas class="ll-pad-canvas" data-testid="ll-draw-canvas" role="img" ` +
    `aria-label="Drawing pad: draw one digit, white on black"></canvas>` +
    `<div class="ll-pad-bar"><button type="button" data-act="undo" title="Take back the last stroke">Undo</button>` +
    `<button type="button" data-act="clear" title="Wipe the pad">Clear</button>` +
    `<span class="ll-pad-msg" role="status" aria-live="polite"></span></div>`;
  parent.appendChild(root);
  S.root = root;
  S.canvas = root.querySelector("canvas");
  S.msg = root.querySelector(".ll-pad-msg");
  S.ctx = S.canvas.getContext("2d");
  S.current = null;
  const c = S.canvas;
  c.addEventListener("pointerdown", e => down(S, e));
  c.addEventListener("pointermove", e => move(S, e));
  c.addEventListener("pointerup", e => up(S, e));
  c.addEventListener("pointercancel", e => up(S, e));
  c.addEventListener("contextmenu", e => e.preventDefault());
  root.querySelector('[data-act="undo"]').addEventListener("click", () => {
    if (!S.strokes.length) return;
    S.strokes.pop();
    say(S, "");
    paint(S);
    report(S);
  });
  root.querySelector('[data-act="clear"]').addEventListener("click", () => {
    if (!S.strokes.length) return;
    S.strokes = [];
    say(S, "");
    paint(S);
    report(S);
  });
}

function fit(S) {
  // The canvas's pixels follow the screen's density, so the ink is as crisp as the page's text.
  const dpr = Math.min(3, window.devicePixelRatio || 1);
  const side = Math.round(S.size * dpr);
  if (S.canvas.width !== side) { S.canvas.width = side; S.canvas.height = side; }
  S.canvas.style.width = `${S.size}px`; // and as high (CSS aspect-ratio), less in a narrow column
}

export default function (component) {
  const { parentElement, setStateValue } = component;
  const data = component.data && component.data.json ? JSON.parse(component.data.json) : {};
  const S = parentElement.__llPad || (parentElement.__llPad = {});
  S.setStateValue = setStateValue;
  S.size = data.size || 280;
  S.pen = data.pen || S.size / 14;
  if (!S.root || !S.root.isConnected) {
    const init = data.init;
    S.strokes = init && Array.isArray(init.strokes) ? init.strokes.map(s => s.map(p => [p[0], p[1]])) : [];
    build(S, parentElement);
  }
  fit(S);
  paint(S);
  window.__latentLabPad = { strokes: () => S.strokes, rev: () => S.rev || 0 }; // for tests
  return () => { S.root = null; };
}
