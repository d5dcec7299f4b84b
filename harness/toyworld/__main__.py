"""``python -m harness.toyworld [--cache-dir DIR] [key=value ...]``: build (or find) a toy world,
print its summary.

Keys are :class:`~harness.toyworld.ToyWorldSpec` fields (``pretrain_steps=300``); useful to warm a cache (CI)
or to look at the base model's statistics before running methods on it.
"""

from __future__ import annotations

import argparse
import json
import sys

from harness.errors import UserError
from harness.toyworld.build import build_toy_world
from harness.toyworld.spec import ToyWorldSpec


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, build the world, print its directory and meta.json (spec left out);
    returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m harness.toyworld", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", default=None, help="parent directory of cached worlds")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="ToyWorldSpec fields")
    args = parser.parse_args(argv)
    try:
        values = {}
        for item in args.overrides:
            key, sep, value = item.partition("=")
            if not sep:
                raise UserError(f"Expected key=value, got {item!r}.")
            try:
                values[key] = json.loads(value)
            except json.JSONDecodeError:
                values[key] = value  # not a number: from_dict names the key and the expected type
        world = build_toy_world(ToyWorldSpec.from_dict(values), cache_dir=args.cache_dir)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(world.root)
    print(json.dumps({k: v for k, v in world.meta.items() if k != "spec"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
