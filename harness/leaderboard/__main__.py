"""``python -m harness.leaderboard DIR... [--out DIR]``: rebuild a leaderboard from trial records."""

import sys

from harness.leaderboard.board import main

sys.exit(main())
