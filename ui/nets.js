// The networks the browser runs: the decoder (the Sliders page, the maps' hover card) and the digit
// classifier (the hover card's digit-likeness score), read from vae/export.py's packed bytes:
//   magic | uint32 n | JSON header (n bytes) | float32 or float16 weights
// with magic "LLD1" (a decoder), "LLC1" (a classifier) or "LLB1" (a bundle of named parts).
// Plain functions, no DOM: the components import them (ui/components.py inlines this file into each
// module that imports it, since a components-v2 module is one string), and the browser tests check
// them against the numpy references (vae.models.run_decoder_layers, vae.export.run_classifier_layers).

let halfTable = null;
export function halfToFloat32(u16) {
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

export function readHeader(bytes, magic = "LLD1") {
  const got = String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3]);
  if (got !== magic) throw new Error(`not a packed blob of kind ${magic} (found ${JSON.stringify(got)})`);
  const n = bytes[4] | (bytes[5] << 8) | (bytes[6] << 16) | (bytes[7] << 24);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  return { header, offset: 8 + n };
}

// A bundle -> {header, parts: {name: Uint8Array}} (each part a copy, so it starts aligned).
export function readParts(bytes) {
  const { header, offset } = readHeader(bytes, "LLB1");
  const parts = {};
  for (const [name, [off, len]] of Object.entries(header.parts || {}))
    parts[name] = bytes.slice(offset + off, offset + off + len);
  return { header, parts };
}

function weights(bytes, magic) {
  const { header, offset } = readHeader(bytes, magic);
  // Copy: Streamlit's Uint8Array may be a view at an unaligned offset of a larger buffer.
  const raw = bytes.slice(offset).buffer;
  const values = header.dtype === "float32" ? new Float32Array(raw) : halfToFloat32(new Uint16Array(raw));
  const take = ([off, shape]) => values.subarray(off, off + shape.reduce((a, b) => a * b, 1));
  return { header, take };
}

// Float16 values (as a Uint8Array of little-endian bytes) -> Float32Array.
export function halves(bytes) {
  return halfToFloat32(new Uint16Array(bytes.slice().buffer));
}

// Bytes -> a model: Float32Array weights per layer, preallocated activations per layer.
export function parseDecoder(bytes) {
  const { header, take } = weights(bytes, "LLD1");
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

// A linear layer: L.out = L.b + h @ W, W stored transposed (nIn, nOut) so that each input adds one
// contiguous column, and the inputs a ReLU zeroed are skipped.
function linear(L, h) {
  const { w, b, nIn, nOut, out } = L;
  out.set(b);
  for (let i = 0; i < nIn; i++) {
    const v = h[i];
    if (v === 0) continue;
    const col = i * nOut;
    for (let o = 0; o < nOut; o++) out[o] += v * w[col + o];
  }
}

// z (array of D numbers) -> Float32Array(784) of pixel probabilities, row-major 28x28. The array is
// the model's own and is overwritten by the next decode: copy it to keep it.
export function decode(model, z) {
  let h = Float32Array.from(z);
  for (const L of model.layers) {
    const out = L.out;
    if (L.type === "linear") {
      linear(L, h);
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

// The digit classifier (vae/classifier.py: conv 3x3 + ReLU + max pool, twice, then two linear layers).
// Activations are kept pixel-major ("HWC": the channels of one pixel side by side), so the innermost
// loops run over output channels through contiguous weights; the first linear layer's columns are
// permuted once from PyTorch's flatten order (channel-major) to that layout.
export function parseClassifier(bytes) {
  const { header, take } = weights(bytes, "LLC1");
  let [c, hgt, wid] = header.input || [1, 28, 28];
  let flat = false;
  const layers = [];
  for (const spec of header.layers) {
    const w = take(spec.weight), b = take(spec.bias);
    if (spec.type === "conv") {
      const [cOut, cIn, k] = spec.weight[1];
      if (cIn !== c || flat) throw new Error("the classifier's layers do not fit together");
      const p = spec.padding, hOut = hgt + 2 * p - k + 1, wOut = wid + 2 * p - k + 1;
      // (cOut, cIn, ky, kx) -> (ky, kx, cIn, cOut)
      const wT = new Float32Array(w.length);
      for (let o = 0; o < cOut; o++) for (let ci = 0; ci < cIn; ci++) for (let t = 0; t < k * k; t++)
        wT[(t * cIn + ci) * cOut + o] = w[(o * cIn + ci) * k * k + t];
      const q = spec.pool || 1, hP = Math.floor(hOut / q), wP = Math.floor(wOut / q);
      layers.push({ type: "conv", relu: spec.relu, w: wT, b, cIn, cOut, k, p, hIn: hgt, wIn: wid, hOut, wOut, q,
                    out: new Float32Array(hOut * wOut * cOut), pooled: new Float32Array(hP * wP * cOut) });
      c = cOut; hgt = hP; wid = wP;
    } else {
      const [nOut, nIn] = spec.weight[1];
      const wT = new Float32Array(w.length);
      if (!flat) {
        if (nIn !== c * hgt * wid) throw new Error("the classifier's layers do not fit together");
        // PyTorch flattens (C, H, W); the activations here are (H, W, C).
        const hw = hgt * wid;
        for (let o = 0; o < nOut; o++) for (let ci = 0; ci < c; ci++) for (let t = 0; t < hw; t++)
          wT[(t * c + ci) * nOut + o] = w[o * nIn + ci * hw + t];
        flat = true;
      } else {
        for (let o = 0; o < nOut; o++) for (let i = 0; i < nIn; i++) wT[i * nOut + o] = w[o * nIn + i];
      }
      layers.push({ type: "linear", relu: spec.relu, w: wT, b, nIn, nOut, out: new Float32Array(nOut) });
      c = nOut; hgt = wid = 1;
    }
  }
  return { header, layers, classes: c, probs: new Float32Array(c) };
}

// pixels (784 numbers in [0, 1], row-major 28x28) -> {p: the top class probability, label, probs}.
export function classify(model, pixels) {
  let h = pixels;
  for (const L of model.layers) {
    const out = L.out;
    if (L.type === "conv") {
      const { w, b, cIn, cOut, k, p, hIn, wIn, hOut, wOut } = L;
      for (let y = 0; y < hOut; y++) {
        for (let x = 0; x < wOut; x++) {
          const base = (y * wOut + x) * cOut;
          for (let o = 0; o < cOut; o++) out[base + o] = b[o];
          for (let ky = 0; ky < k; ky++) {
            const iy = y + ky - p;
            if (iy < 0 || iy >= hIn) continue;
            for (let kx = 0; kx < k; kx++) {
              const ix = x + kx - p;
              if (ix < 0 || ix >= wIn) continue;
              const inBase = (iy * wIn + ix) * cIn, wBase = (ky * k + kx) * cIn * cOut;
              for (let ci = 0; ci < cIn; ci++) {
                const v = h[inBase + ci];
                if (v === 0) continue; // after a ReLU many inputs are zero (and MNIST is mostly black)
                const wb = wBase + ci * cOut;
                for (let o = 0; o < cOut; o++) out[base + o] += v * w[wb + o];
              }
            }
          }
        }
      }
      if (L.relu) for (let i = 0; i < out.length; i++) if (out[i] < 0) out[i] = 0;
      if (L.q > 1) {
        const q = L.q, pooled = L.pooled, hP = Math.floor(hOut / q), wP = Math.floor(wOut / q);
        for (let y = 0; y < hP; y++) for (let x = 0; x < wP; x++) {
          const dst = (y * wP + x) * cOut;
          for (let o = 0; o < cOut; o++) {
            let m = -Infinity;
            for (let dy = 0; dy < q; dy++) for (let dx = 0; dx < q; dx++) {
              const v = out[((y * q + dy) * wOut + x * q + dx) * cOut + o];
              if (v > m) m = v;
            }
            pooled[dst + o] = m;
          }
        }
        h = pooled;
      } else {
        h = out;
      }
    } else {
      linear(L, h);
      if (L.relu) for (let i = 0; i < L.nOut; i++) if (out[i] < 0) out[i] = 0;
      h = out;
    }
  }
  const probs = model.probs;
  let top = -Infinity, label = 0, sum = 0;
  for (let i = 0; i < h.length; i++) if (h[i] > top) { top = h[i]; label = i; }
  for (let i = 0; i < h.length; i++) sum += (probs[i] = Math.exp(h[i] - top));
  for (let i = 0; i < h.length; i++) probs[i] /= sum;
  return { p: probs[label], label, probs };
}
