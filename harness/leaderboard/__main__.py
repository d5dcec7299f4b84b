"""``python -m harness.leaderboard DIR... [--out DIR]``: see :mod:`harness.leaderboard.cli`."""

import sys

from harness.leaderboard.cli import main

sys.exit(main())
