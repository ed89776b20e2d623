// Keeps this browser's identity across reloads: writes the cookies Python asks for (ui/identity.py).
// data = {set: {name: value}, clear: [name]}; values are URL-safe tokens or hex digests.
// Not HttpOnly (a page script writes them), so the teacher cookie is an HMAC worth nothing elsewhere.
export default function ({ data }) {
  const secure = location.protocol === "https:" ? "; Secure" : "";
  for (const [name, value] of Object.entries((data && data.set) || {})) {
    document.cookie = `${name}=${value}; path=/; max-age=31536000; SameSite=Lax${secure}`;
  }
  for (const name of (data && data.clear) || []) {
    document.cookie = `${name}=; path=/; max-age=0; SameSite=Lax${secure}`;
  }
}
