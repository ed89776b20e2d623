"""`python -m vae.jobs submit|list|cancel`: trainings from a terminal (vae/jobs/cli.py)."""

import sys

from .cli import main

sys.exit(main())
