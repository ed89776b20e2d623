"""`python -m vae.movie CHECKPOINT --out FILE.gif`: a checkpoint's latent movie as an animated GIF (vae/movie/cli.py)."""

import sys

from .cli import main

sys.exit(main())
