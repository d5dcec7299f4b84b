"""``python -m harness.export``: see :mod:`harness.export`."""

import sys

from harness.export.cli import main

sys.exit(main())
