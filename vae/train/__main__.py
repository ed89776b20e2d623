"""`python -m vae.train`: train a model from the command line (the flags and the job file: vae/train/cli.py)."""

import sys

from .cli import main

sys.exit(main())
