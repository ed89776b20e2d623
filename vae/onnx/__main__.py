"""python -m vae.onnx import|export ...: see vae.onnx.cli."""

import sys

from .cli import main

sys.exit(main())
