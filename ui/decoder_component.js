// Live latent sliders: decodes the digit in the browser on every input event.
//
// Streamlit hands this module `data`: the bytes from vae/export.py's pack_decoder (read by ui/nets.js), i.e.
//   "LLD1" | uint32 n | JSON header (n bytes) | float32 or float16 weights.
// The header holds the layers (mirroring vae.models.run_decoder_layers) and the page's
// fields: start (the full code), dims / ranges / labels (one slider each), token (changes
// when the start or the model changes, or on Reset).
// The code is sent back with setStateValue("code", {z, token}) when a slider is released,
// never while dragging: each report reruns the page script.

import { readHeader, parseDecoder, decode } from "./nets.js"; // the decoder math, shared with the maps' hover card

export { readHeader, parseDecoder, decode };

function fmt(v) {
  return (v >= 0 ? "\u2009" : "") + v.toFixed(2);
}

// The canvas, its drawing loop and the slider rows, built once per mounted element.
function build(st, parentElement) {
  const root = document.createElement("div");
  root.className = "ll-root";
  root.innerHTML = `<div class="ll-view"><canvas width="28" height="28" data-testid="ll-canvas"
      aria-label="decoded digit"></canvas><div class="ll-stats"></div></div><div class="ll-rows"></div>`;
  parentElement.appendChild(root);
  const canvas = root.querySelector("canvas"), stats = root.querySelector(".ll-stats");
  const ctx = canvas.getContext("2d"), image = ctx.createImageData(28, 28), recent = [];
  let pending = 0;
  st.root = root;
  st.canvas = canvas;
  st.rows = root.querySelector(".ll-rows");
  st.draw = () => {
    pending = 0;
    const t0 = performance.now();
    const probs = decode(st.model, st.z);
    for (let i = 0; i < 784; i++) {
      const g = Math.round(255 * probs[i]);
      image.data[4 * i] = image.data[4 * i + 1] = image.data[4 * i + 2] = g;
      image.data[4 * i + 3] = 255;
    }
    ctx.putImageData(image, 0, 0);
    recent.push(performance.now() - t0);
    if (recent.length > 30) recent.shift();
    const mean = recent.reduce((a, b) => a + b, 0) / recent.length;
    st.frames += 1;
    canvas.dataset.frames = String(st.frames);
    canvas.dataset.decodeMs = mean.toFixed(3);
    stats.textContent = `decoded in your browser · ${mean < 1 ? mean.toFixed(2) : mean.toFixed(1)} ms per frame`;
  };
  // Input events can outpace the screen: draw at most once per animation frame.
  st.schedule = () => { if (!pending) pending = requestAnimationFrame(st.draw); };
  st.cancel = () => { if (pending) cancelAnimationFrame(pending); pending = 0; };
}

function buildRows(st, header) {
  st.inputs = [];
  st.rows.replaceChildren();
  header.dims.forEach((d, n) => {
    const [lo, hi] = header.ranges[n];
    const row = document.createElement("label");
    row.className = "ll-row";
    row.innerHTML = `<span class="ll-name"></span><input type="range"><output></output>`;
    row.querySelector(".ll-name").textContent = header.labels[n];
    const input = row.querySelector("input"), out = row.querySelector("output");
    Object.assign(input, { min: lo, max: hi, step: (hi - lo) / 500 });
    input.dataset.dim = d;
    input.addEventListener("input", () => {
      st.z[d] = Number(input.value);
      out.textContent = fmt(st.z[d]);
      st.schedule();
    });
    // Released: tell Python (this reruns the page script, so never while dragging).
    input.addEventListener("change", () => st.setStateValue("code", { z: Array.from(st.z), token: st.token }));
    st.rows.appendChild(row);
    st.inputs.push([input, out, d]);
  });
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  if (!data || !data.length) return;
  // Streamlit calls this function again on every rerun, with the same parentElement and without
  // running the previous cleanup: the state lives on the element, and the DOM is kept when the
  // rows are unchanged, so a rerun never interrupts a drag that has already started again.
  const st = parentElement.__latentSliders || (parentElement.__latentSliders = { frames: 0 });
  st.setStateValue = setStateValue;
  const { header } = readHeader(data);
  if (st.digest !== header.digest) {
    st.model = parseDecoder(data);
    st.digest = header.digest;
  }
  const restart = st.token !== header.token || !st.z || st.z.length !== header.start.length;
  if (restart) {
    st.z = Float32Array.from(header.start);
    st.token = header.token;
  }
  if (!st.root || !st.root.isConnected) build(st, parentElement);
  const layout = JSON.stringify([header.dims, header.ranges, header.labels]);
  if (layout !== st.layout) {
    buildRows(st, header);
    st.layout = layout;
  }
  for (const [input, out, d] of st.inputs) {
    if (input.matches(":active")) continue; // being dragged right now: leave it alone
    input.value = st.z[d];
    out.textContent = fmt(st.z[d]);
  }
  Object.assign(st.canvas.dataset, { digest: st.digest, token: st.token });
  st.draw();
  return () => st.cancel();
}
