"""The core never imports Streamlit: checked in a fresh interpreter, where nothing else could have."""

from __future__ import annotations

import json
import subprocess
import sys

from vae.paths import ROOT

CORE = ["vae", "vae.train", "vae.evaluate", "vae.latent", "vae.maps", "vae.maps.projection", "vae.checkpoint",
        "vae.classifier", "vae.assets", "vae.models", "vae.data"]


def test_core_imports_without_streamlit():
    code = (
        "import importlib, json, pkgutil, sys\n"
        "import vae\n"
        f"names = {CORE!r} + [m.name for m in pkgutil.walk_packages(vae.__path__, 'vae.')\n"  # new modules too,
        "                    if not m.name.endswith('.__main__')]\n"  # subpackages' included; a __main__ would run
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m == 'streamlit' or m.startswith('streamlit.'))))\n"
    )
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout.splitlines()[-1]) == []
    assert "streamlit" not in p.stderr.lower()
