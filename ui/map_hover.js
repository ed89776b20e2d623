// Latent map hover previews: shows the hovered test digit and its label next to the cursor.
//
// The map (ui/map_canvas.js) dispatches a window event "latent-lab-map-hover" with the hovered
// dot's test-set index, class name and mouse position (or null when no dot is hovered); this module
// draws that digit in a small card next to the cursor. Digit pixels are not in the figure: they come in sprite sheets of `size` digits (PNG,
// `cols` per row), requested the first time a digit of that sheet is hovered (trigger "want") and
// kept for the rest of the browser session. Streamlit hands this module `data`:
//   {key, n, size, cols, chunk, png}   png: base64 PNG of sheet `chunk`, or null.
// The module is called again on every rerun of its fragment (not unmounted), so everything it
// keeps lives in one object on window and the window listener is attached once.

const SHEETS = (window.__latentLabSheets = window.__latentLabSheets || new Map()); // key -> Map(chunk -> img)
const S = (window.__latentLabHover = window.__latentLabHover || { pending: {} });
const SCALE = 4;

function sheets(key) {
  if (!SHEETS.has(key)) SHEETS.set(key, new Map());
  return SHEETS.get(key);
}

function card() {
  let el = document.getElementById("latent-lab-hover-card");
  if (!el) {
    el = document.createElement("div");
    el.id = "latent-lab-hover-card";
    el.setAttribute("data-testid", "mapHoverCard");
    el.style.cssText =
      "position:fixed;z-index:100000;pointer-events:none;display:none;background:#fff;color:#222;" +
      "border:1px solid #d0d0d8;border-radius:8px;padding:6px 6px 4px;box-shadow:0 4px 14px rgba(0,0,0,.2);" +
      "font:13px/1.3 'Source Sans Pro',sans-serif;text-align:center";
    const px = 28 * SCALE;
    el.innerHTML =
      `<canvas width="${px}" height="${px}" style="width:${px}px;height:${px}px;display:block;` +
      `image-rendering:pixelated;border-radius:4px;background:#000"></canvas><div class="ll-label"></div>`;
    document.body.appendChild(el);
  }
  return el;
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

function draw() {
  const el = card(), d = S.data;
  if (!d || S.hovered == null) return;
  const canvas = el.querySelector("canvas"), ctx = canvas.getContext("2d");
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

function onHover(e) {
  const d = e && e.detail;
  if (!d) return onUnhover();
  const idx = Number(d.index);
  if (!Number.isFinite(idx)) return;
  const el = card();
  S.hovered = idx;
  el.querySelector(".ll-label").textContent = `${S.data && S.data.noun ? S.data.noun + " " : ""}${d.name || ""} · #${idx}`;
  el.style.display = "block";
  place(el, d);
  draw();
}

function onUnhover() {
  S.hovered = null;
  card().style.display = "none";
}

function status(parentElement) {
  const el = parentElement.querySelector(".ll-status");
  const d = S.data;
  if (!el || !d) return;
  const total = Math.ceil(d.n / d.size), have = sheets(d.key).size;
  el.textContent =
    `Hover a dot to see its digit. Digit images load in batches of ${d.size} the first time you hover ` +
    `one of them (${have} of ${total} batches loaded, ${(d.bytes_per_sheet / 1024).toFixed(0)} KB each).`;
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
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
        if (S.hovered != null && Math.floor(S.hovered / data.size) === chunk) draw();
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
    S.onScroll = () => { if (S.hovered != null) onUnhover(); };
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
