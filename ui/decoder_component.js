// Live latent sliders: decodes the digit in the browser on every input event.
//
// Streamlit hands this module `data`: the bytes from vae/export.py's pack_decoder, i.e.
//   "LLD1" | uint32 n | JSON header (n bytes) | float32 or float16 weights.
// The header holds the layers (mirroring vae.models.run_decoder_layers) and the page's
// fields: start (the full code), dims / ranges / labels (one slider each), token (changes
// when the start or the model changes, or on Reset).
// The code is sent back with setStateValue("code", {z, token}) when a slider is released,
// never while dragging: each report reruns the page script.

const MAGIC = "LLD1";

let halfTable = null;
function halfToFloat32(u16) {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
      halfTable[h] = e === 0 ? s * f * 2 ** -24 : e === 31 ? (f ? NaN : s * Infinity) : s * (1 + f / 1024) * 2 ** (e - 15);
    }
  }
  const out = new Float32Array(u16.length);
  for (let i = 0; i < u16.length; i++) out[i] = halfTable[u16[i]];
  return out;
}

export function readHeader(bytes) {
  const magic = String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3]);
  if (magic !== MAGIC) throw new Error("not a packed decoder");
  const n = bytes[4] | (bytes[5] << 8) | (bytes[6] << 16) | (bytes[7] << 24);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  return { header, offset: 8 + n };
}

// Bytes -> a model: Float32Array weights per layer, preallocated activations per layer.
export function parseDecoder(bytes) {
  const { header, offset } = readHeader(bytes);
  // Copy: Streamlit's Uint8Array may be a view at an unaligned offset of a larger buffer.
  const raw = bytes.slice(offset).buffer;
  const values = header.dtype === "float32" ? new Float32Array(raw) : halfToFloat32(new Uint16Array(raw));
  const take = ([off, shape]) => values.subarray(off, off + shape.reduce((a, b) => a * b, 1));
  const layers = [];
  let size = header.layers[0].weight[1][1]; // the latent dimension
  let side = 0, channels = 0;
  for (const spec of header.layers) {
    const w = take(spec.weight), b = take(spec.bias);
    if (spec.type === "linear") {
      const [nOut, nIn] = spec.weight[1];
      // Stored transposed, (nIn, nOut): decode() adds one input's column at a time, contiguously,
      // and skips the inputs a ReLU zeroed.
      const wT = new Float32Array(w.length);
      for (let o = 0; o < nOut; o++) for (let i = 0; i < nIn; i++) wT[i * nOut + o] = w[o * nIn + i];
      layers.push({ type: "linear", relu: spec.relu, w: wT, b, nIn, nOut, out: new Float32Array(nOut) });
      size = nOut; side = 0;
    } else {
      const [cIn, cOut, k] = spec.weight[1];
      if (!side) { channels = cIn; side = Math.round(Math.sqrt(size / cIn)); }
      const s = spec.stride, p = spec.padding;
      const hOut = (side - 1) * s + k - 2 * p;
      // Reorder the weight from (cIn, cOut, k, k) to (cIn, k, k, cOut): the innermost loop of
      // decode() then runs over output channels through contiguous memory.
      const wT = new Float32Array(w.length);
      for (let c = 0; c < cIn; c++) for (let o = 0; o < cOut; o++) for (let t = 0; t < k * k; t++)
        wT[(c * k * k + t) * cOut + o] = w[(c * cOut + o) * k * k + t];
      layers.push({ type: "convT", relu: spec.relu, w: wT, b, cIn, cOut, k, s, p, hIn: side, hOut,
                    out: new Float32Array(cOut * hOut * hOut) });
      side = hOut; channels = cOut; size = cOut * hOut * hOut;
    }
  }
  if (size !== 784) throw new Error(`the decoder outputs ${size} values, not 28x28`);
  return { header, layers, latentDim: header.layers[0].weight[1][1], probs: new Float32Array(784) };
}

// z (array of D numbers) -> Float32Array(784) of pixel probabilities, row-major 28x28.
export function decode(model, z) {
  let h = Float32Array.from(z);
  for (const L of model.layers) {
    const out = L.out;
    if (L.type === "linear") {
      const { w, b, nIn, nOut } = L;
      out.set(b);
      for (let i = 0; i < nIn; i++) {
        const v = h[i];
        if (v === 0) continue;
        const col = i * nOut;
        for (let o = 0; o < nOut; o++) out[o] += v * w[col + o];
      }
    } else {
      // Transposed convolution: input pixel (i, j) of channel c adds h * weight[c, o, ky, kx] to
      // output pixel (i*s + ky - p, j*s + kx - p) of every channel o (w is stored (c, ky, kx, o)).
      const { w, b, cIn, cOut, k, s, p, hIn, hOut } = L;
      const plane = hOut * hOut;
      for (let o = 0; o < cOut; o++) out.fill(b[o], o * plane, (o + 1) * plane);
      for (let c = 0; c < cIn; c++) {
        for (let i = 0; i < hIn; i++) {
          for (let j = 0; j < hIn; j++) {
            const v = h[(c * hIn + i) * hIn + j];
            if (v === 0) continue; // after a ReLU most inputs are zero
            for (let ky = 0; ky < k; ky++) {
              const y = i * s + ky - p;
              if (y < 0 || y >= hOut) continue;
              for (let kx = 0; kx < k; kx++) {
                const x = j * s + kx - p;
                if (x < 0 || x >= hOut) continue;
                const wBase = ((c * k + ky) * k + kx) * cOut, pos = y * hOut + x;
                for (let o = 0; o < cOut; o++) out[o * plane + pos] += v * w[wBase + o];
              }
            }
          }
        }
      }
    }
    if (L.relu) for (let i = 0; i < out.length; i++) if (out[i] < 0) out[i] = 0;
    h = out;
  }
  const probs = model.probs;
  for (let i = 0; i < 784; i++) probs[i] = 1 / (1 + Math.exp(-h[i]));
  return probs;
}

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
