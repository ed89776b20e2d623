// Keeps this browser's identity across reloads: writes the cookies Python asks for (ui/identity.py).
// data.json: the JSON text of {set: {name: value}, clear: [name]}; values are URL-safe tokens or hex
// digests. (Text in one field, as ui/map_canvas does: Streamlit scans nested objects for dataframes,
// which imports pandas on the first page.)
// Not HttpOnly (a page script writes them), so the teacher cookie is an HMAC worth nothing elsewhere.
export default function ({ data }) {
  data = data && data.json ? JSON.parse(data.json) : data;
  const secure = location.protocol === "https:" ? "; Secure" : "";
  for (const [name, value] of Object.entries((data && data.set) || {})) {
    document.cookie = `${name}=${value}; path=/; max-age=31536000; SameSite=Lax${secure}`;
  }
  for (const name of (data && data.clear) || []) {
    document.cookie = `${name}=; path=/; max-age=0; SameSite=Lax${secure}`;
  }
}
