// "Copy link": copies the browser's address (every run of the page keeps it up to date with the view,
// see ui/links.py) so a teacher can hand the class the view.
//
// navigator.clipboard exists only in a secure context (https, or localhost): a classroom server reached
// over http on the LAN has none. There the address is shown in a text field, selected, and copied with
// the older execCommand("copy"); where even that is refused, the field stays selected for Ctrl+C.

const SAID_MS = 2500;

function say(root, text) {
  const msg = root.querySelector(".ll-copy-msg");
  msg.textContent = text;
  clearTimeout(root.__llSaid);
  if (text === "Link copied") root.__llSaid = setTimeout(() => { msg.textContent = ""; }, SAID_MS);
}

function fallback(root, url) {
  const field = root.querySelector(".ll-copy-url");
  field.value = url;
  field.hidden = false;
  field.size = Math.min(Math.max(url.length, 20), 70);
  field.focus();
  field.select();
  let copied = false;
  try { copied = document.execCommand("copy"); } catch (e) { copied = false; }
  say(root, copied ? "Link copied" : "Press Ctrl+C (⌘C on a Mac) to copy the selected link");
  root.dataset.copied = copied ? "fallback" : "";
}

async function copy(root) {
  const url = window.location.href;
  root.dataset.copied = "";
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(url);
      root.querySelector(".ll-copy-url").hidden = true;
      say(root, "Link copied");
      root.dataset.copied = "clipboard";
      return;
    } catch (e) { /* refused (no permission, no focus): fall back below */ }
  }
  fallback(root, url);
}

export default function (component) {
  const root = component.parentElement.querySelector(".ll-copy");
  if (!root || root.__llCopy) return;
  root.__llCopy = true;
  root.querySelector(".ll-copy-btn").addEventListener("click", () => copy(root));
}
