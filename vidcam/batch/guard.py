"""What a batch may replace: never an input of the run, never a file it did not write.

:class:`InputSet` holds every file the run reads (videos, ground truths, manifests), by
resolved path and by (device, inode), so a planned output is compared with all of them in
O(1) (also through links and hard links). :func:`output_conflict` checks one video's planned
outputs: an input is never replaced (not even with ``overwrite``); an existing file that no
earlier run of that video wrote (the resume state lists what each run wrote, see
:func:`vidcam.batch.state.written_before`) is replaced only with ``overwrite``; a link, a
FIFO or a device is never replaced.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path

from vidcam.batch.layout import Outputs


class InputSet:
    """The files a run reads; :meth:`holds` tells whether a path is (or is linked to) one."""

    def __init__(self, paths: Iterable[str | Path | None]) -> None:
        self.resolved: set[Path] = set()
        self.ids: dict[tuple[int, int], Path] = {}
        for p in paths:
            if p is None:
                continue
            self.resolved.add(Path(p).resolve())
            try:
                st = os.stat(p)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                self.ids.setdefault((st.st_dev, st.st_ino), Path(p).resolve())

    def holds(self, p: str | Path) -> Path | None:
        """The input ``p`` is (resolved path or same file), else None."""
        r = Path(p).resolve()
        if r in self.resolved:
            return r
        try:
            st = os.stat(p)
        except OSError:
            return None
        return self.ids.get((st.st_dev, st.st_ino))


def output_conflict(
    o: Outputs,
    kinds: Sequence[str],
    inputs: InputSet,
    written: set[str],
    ours: set[str],
    *,
    overwrite: bool,
) -> str | None:
    """A one-line reason why output ``kinds`` (and the state files) of ``o`` may not be
    written, else None. ``written``: names an earlier run of this video wrote; ``ours``:
    state files that are vidcam's own (they may always be replaced)."""
    for kind in (*kinds, "done", "failed"):
        p = o.path(kind)
        rel = o.rel(kind)
        hit = inputs.holds(p)
        if hit is not None:
            return (
                f"output {str(p)!r} is the input {str(hit)!r} of this run; an input is never "
                "replaced (choose another -o folder)"
            )
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            continue
        except OSError as exc:
            return f"output {str(p)!r}: {exc.strerror or exc}"
        if not stat.S_ISREG(st.st_mode):
            what = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a regular file"
            return f"output {str(p)!r} exists and is {what}; it is never replaced (remove it)"
        if rel in written or rel in ours or overwrite:
            continue
        return (
            f"output {str(p)!r} already exists and no earlier batch run of this video wrote "
            "it; pass --overwrite to replace it"
        )
    return None


def identities(paths: Iterable[Path]) -> dict[Path, tuple[int, int] | None]:
    """path -> (device, inode) of the file there now (None: no file)."""
    out: dict[Path, tuple[int, int] | None] = {}
    for p in paths:
        try:
            st = os.lstat(p)
        except OSError:
            out[p] = None
            continue
        out[p] = (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None
    return out
