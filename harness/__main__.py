"""``python -m harness``: see :mod:`harness.cli.app`."""

from harness.cli.app import main

main()
