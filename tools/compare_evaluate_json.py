"""Compare two ``vidcam evaluate --json`` files: same keys, same order, same numbers.

Usage: ``python tools/compare_evaluate_json.py BASE.json NEW.json [BASE2.json NEW2.json ...]``

Everything must match exactly (keys, their order, every value bit for bit) except what
measures wall time: the ``timing`` section and every ``cost.seconds`` (a method's engine time
per clip, and its mean in the summary). Prints one line per pair and every difference (the
first 20); exits 1 when any pair differs. Reads the files with the standard library only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

#: what may differ between two runs of the same code: wall-clock seconds
IGNORED_TOP = ("timing",)
IGNORED_LEAF = ("seconds",)  # under a "cost" object


def _walk(a: Any, b: Any, path: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b):
            out.append(f"{path}: keys differ: {list(a)} != {list(b)}")
            return
        for k in a:
            if path.endswith(".cost") and k in IGNORED_LEAF:
                continue
            _walk(a[k], b[k], f"{path}.{k}", out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{path}: length {len(a)} != {len(b)}")
            return
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _walk(x, y, f"{path}[{i}]", out)
    elif type(a) is not type(b) or (a != b and not (a != a and b != b)):  # NaN == NaN here
        out.append(f"{path}: {a!r} != {b!r}")


def compare(base: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The differences between two evaluation JSON documents (empty: identical)."""
    out: list[str] = []
    if list(base) != list(new):
        out.append(f"top-level keys differ: {list(base)} != {list(new)}")
        return out
    for k in base:
        if k not in IGNORED_TOP:
            _walk(base[k], new[k], k, out)
    return out


def main(argv: list[str]) -> int:
    if len(argv) < 2 or len(argv) % 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    failed = False
    for base_path, new_path in zip(argv[::2], argv[1::2], strict=True):
        base = json.loads(Path(base_path).read_text())
        new = json.loads(Path(new_path).read_text())
        diffs = compare(base, new)
        leaves = _count(base)
        verdict = "IDENTICAL" if not diffs else f"{len(diffs)} DIFFERENCES"
        print(
            f"{base_path} vs {new_path}: {verdict} ({leaves} values compared; timing and "
            "cost.seconds ignored)"
        )
        for d in diffs[:20]:
            print("  " + d)
        failed |= bool(diffs)
    return 1 if failed else 0


def _count(x: Any) -> int:
    if isinstance(x, dict):
        return sum(_count(v) for k, v in x.items() if k not in IGNORED_TOP)
    if isinstance(x, list):
        return sum(_count(v) for v in x)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
