"""Text from users (model names, file names) inside Streamlit's Markdown, shown as the text it is.

    st.success(f"Renamed to {plain(name)}.")     # a name like **x** or ![x](http://…) stays literal

Streamlit renders the strings of st.markdown, st.caption, st.success… as Markdown (plus its own
directives: :red[…], :material/…:, $…$ for LaTeX). Every ASCII punctuation character may be
backslash-escaped in CommonMark, which then shows it literally, so escaping all of them is the one rule
that covers links, images, emphasis, headings, tables, HTML tags and Streamlit's directives alike.
Line breaks become spaces: a name is one line. Escapes do not stop GitHub-flavoured Markdown from
linking a bare address (http://…, www.…, name@host.org), which it finds in the text after escapes are
read, so a zero-width space goes where such a link would start (after "http:", "www", "@").
"""

from __future__ import annotations

import re
import string

_SPECIAL = re.compile("([" + re.escape(string.punctuation) + "])")
_BREAKS = re.compile(r"[\r\n\t\v\f\u2028\u2029]+")
_AUTOLINK = re.compile(r"(?i)(:(?=//)|\bwww(?=\.)|@)")
ZWSP = "\u200b"


def plain(text: object) -> str:
    """`text` escaped for Markdown: every ASCII punctuation character backslash-escaped, breaks as spaces,
    bare web and mail addresses broken by a zero-width space."""
    text = _AUTOLINK.sub(lambda m: m.group(1) + ZWSP, _BREAKS.sub(" ", str(text)))
    return _SPECIAL.sub(r"\\\1", text)
