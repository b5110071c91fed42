"""``python -m openclaw_nb``: the same as the ``openclaw-nb`` command."""

import sys

from .cli import main

sys.exit(main())
