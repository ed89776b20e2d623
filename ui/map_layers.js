// The digit-likeness layer's channel (ui/map_layers.py): a tiny component in a fragment of its own. It
// turns the settled views of one map (ui/map_canvas.js dispatches "latent-lab-map-view" {key, id, view})
// into its state "view", which reruns only its fragment, and hands the layer that comes back to that map
// (window.__latentLabMaps[key].setLayer, and window.__latentLabLayers[key] for a map drawn later). So a
// new view costs the layer's few KB, not the 70 KB of dots; and it is a module of its own because
// Streamlit sends a component's code with every message that draws it.
//   data: {json: '{"key": map key, "layer": {id, view: [[x0, x1], [y0, y1]], png} | null}'}
//   png: base64 of the n x n RGBA picture, to stretch over `view`.

function channel(component, d) {
  const { parentElement, setStateValue } = component;
  const C = parentElement.__llChannel || (parentElement.__llChannel = {});
  C.setStateValue = setStateValue;
  C.key = d.key;
  const layers = (window.__latentLabLayers = window.__latentLabLayers || {});
  const L = d.layer;
  if (L && L.png && (!layers[d.key] || layers[d.key].png !== L.png || layers[d.key].id !== L.id)) {
    const img = new Image();
    const entry = { id: L.id, view: L.view, png: L.png, img: null };
    layers[d.key] = entry;
    img.onload = () => {
      entry.img = img;
      const m = (window.__latentLabMaps || {})[d.key];
      if (layers[d.key] === entry && m && m.setLayer) m.setLayer(entry);
    };
    img.src = `data:image/png;base64,${L.png}`;
  }
  if (!C.listener) {
    C.listener = e => { if (e.detail && e.detail.key === C.key) ask(C, e.detail); };
    window.addEventListener("latent-lab-map-view", C.listener);
  }
  const wanted = (window.__latentLabViews || {})[d.key];
  if (wanted) ask(C, wanted);
  return () => {
    window.removeEventListener("latent-lab-map-view", C.listener);
    C.listener = null;
  };
}

function ask(C, msg) {
  const text = JSON.stringify(msg);
  if (text === C.asked) return; // asked already: its answer is on its way or drawn
  C.asked = text;
  C.setStateValue("view", { id: msg.id, view: msg.view });
}

export default function (component) {
  const d = component.data && component.data.json ? JSON.parse(component.data.json) : null;
  if (d && d.key) return channel(component, d);
}
