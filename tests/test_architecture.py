"""The layering as a test: import contracts (pyproject's [tool.importlinter]) and small modules."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports() -> str:
    exe = Path(sys.executable).with_name("lint-imports")
    found = str(exe) if exe.exists() else shutil.which("lint-imports")
    if not found:
        pytest.fail("lint-imports is not installed: pip install -e '.[test]'")
    return found


def test_import_contracts_are_kept():
    r = subprocess.run(
        [_lint_imports(), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "broken" in r.stdout and " 0 broken" in r.stdout


def test_a_broken_layer_is_caught(tmp_path):
    """The contracts really bite: a copy of the package whose engine imports the pipeline fails."""
    pkg = tmp_path / "vidcam"
    shutil.copytree(ROOT / "vidcam", pkg, ignore=shutil.ignore_patterns("__pycache__", "weights"))
    with open(pkg / "cam" / "maps.py", "a", encoding="utf-8") as f:
        f.write("\nimport vidcam.video.render  # noqa\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    env = {"PYTHONPATH": str(tmp_path), "PATH": str(Path(sys.executable).parent)}
    r = subprocess.run(
        [_lint_imports(), "--no-cache"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert r.returncode != 0
    assert "vidcam.cam.maps -> vidcam.video.render" in r.stdout


#: argparse builders: a long flat list of options, one per call, is their clearest form
ARGPARSE_BUILDERS = ("add_arguments", "build_parser")


def test_no_module_is_a_thousand_line_utility():
    sizes = {
        p: len(p.read_text(encoding="utf-8").splitlines()) for p in (ROOT / "vidcam").rglob("*.py")
    }
    big = {str(p.relative_to(ROOT)): n for p, n in sizes.items() if n > 400}
    assert not big, f"split these modules (over 400 lines): {big}"


def test_no_function_is_over_sixty_lines():
    long = {}
    for p in (ROOT / "vidcam").rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > 60 and node.name not in ARGPARSE_BUILDERS:
                    long[f"{p.relative_to(ROOT)}:{node.name}"] = n
    assert not long, f"split these functions (over 60 lines): {long}"
