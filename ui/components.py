"""Registration of the app's own browser components (Streamlit components v2), from files beside this one.

    _render = component("latent_lab.map_canvas", "map_canvas")   # ui/map_canvas.js (+ .css)
    module_source("map_hover")   # the module text Streamlit gets, sibling imports inlined

A components-v2 module is one string of JavaScript (Streamlit serves a module from a file only for
a component declared with an `asset_dir` in an installed package's pyproject.toml, which this app is
not), so a module cannot import another file at run time. Shared code (ui/nets.js: the decoder and
the classifier) is written as an ordinary ES module and imported the ordinary way,

    import { parseDecoder, decode } from "./nets.js";

and `module_source` replaces each such line by the imported file itself, wrapped in its own function
scope: its top-level names never collide with the importer's, and every module gets one copy.
"""

from __future__ import annotations

import re
from pathlib import Path

import streamlit as st

_HERE = Path(__file__).resolve().parent
# import { a, b as c } from "./file.js";   (only sibling files, only named imports)
_IMPORT = re.compile(r'^import\s*\{([^}]*)\}\s*from\s*["\']\./([\w.-]+\.js)["\'];?[ \t]*(//[^\n]*)?$', re.M)
_EXPORT = re.compile(r"^export\s+((?:async\s+)?(?:function\s*\*?|const|let|var|class)\s*([A-Za-z_$][\w$]*))", re.M)
_NAME = re.compile(r"^[A-Za-z_$][\w$]*$")


def component(name: str, stem: str, **kwargs):
    """An st.components.v2 component whose code is ui/<stem>.js (its sibling imports inlined, see
    `module_source`), styled by ui/<stem>.css where that file exists (or by a `css=` given here). Other
    keyword arguments (html=...) go to Streamlit as they are."""
    css = _HERE / f"{stem}.css"
    if "css" not in kwargs and css.exists():
        kwargs["css"] = css.read_text(encoding="utf-8")
    return st.components.v2.component(name, js=module_source(stem), **kwargs)


def module_source(stem: str) -> str:
    """The text of ui/<stem>.js with every `import { ... } from "./x.js";` replaced by x.js itself."""
    return _inline(_HERE / f"{stem}.js", ())


def _inline(path: Path, chain: tuple[str, ...]) -> str:
    if path.name in chain:
        raise ValueError(f"ui/{path.name} imports itself through {' -> '.join(chain)}.")
    text = path.read_text(encoding="utf-8")

    def replace(m: re.Match) -> str:
        dep = _HERE / m.group(2)
        if not dep.is_file():
            raise ValueError(f"ui/{path.name} imports ui/{m.group(2)}, which does not exist.")
        body = _inline(dep, chain + (path.name,))
        exported = [e.group(2) for e in _EXPORT.finditer(body)]
        stripped = _EXPORT.sub(r"\1", body)
        if re.search(r"^export\s", stripped, re.M):
            raise ValueError(f"ui/{m.group(2)}: only `export function/const/let/class name` can be inlined.")
        binds = []
        for item in (s.strip() for s in m.group(1).split(",")):
            if not item:
                continue
            name, _, alias = (w.strip() for w in item.partition(" as "))
            if name not in exported or not _NAME.match(alias or name):
                raise ValueError(f"ui/{path.name} imports {name!r}, which ui/{m.group(2)} does not export.")
            binds.append(f"{name}: {alias}" if alias else name)
        return (f"// ---- ui/{m.group(2)}, inlined by ui/components.py ----\n"
                f"const {{ {', '.join(binds)} }} = (() => {{\n{stripped}\n"
                f"return {{ {', '.join(exported)} }};\n}})();\n// ---- end of ui/{m.group(2)} ----")

    return _IMPORT.sub(replace, text)
