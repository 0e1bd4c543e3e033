"""One try at a video's outputs: refused before any write, or started, then kept or undone.

:meth:`Attempt.refusal` says why nothing may be written (an output outside ``-o``, an input of
the run, a file no earlier run of this video wrote, without ``overwrite``);
:meth:`Attempt.clear_stale` removes the temporary files a killed run left; :meth:`Attempt.start`
records what exists and writes the ``started`` state; :meth:`Attempt.undo` (after a failure)
removes what this attempt or an earlier run of this video wrote, never a file vidcam did not
write and did not replace.
"""

from __future__ import annotations

from pathlib import Path

from vidcam.batch.guard import InputSet, identities, output_conflict
from vidcam.batch.inputs import Item
from vidcam.batch.layout import Outputs
from vidcam.batch.state import own_state, write_started, written_before
from vidcam.errors import VidcamError


def output_kinds(evaluate: bool) -> list[str]:
    """The output kinds of every video of a run (``metrics`` with ``evaluate``)."""
    return ["video", "json", "maps", "preview", "report"] + (["metrics"] if evaluate else [])


class Attempt:
    """``item``'s outputs ``out`` of the kinds ``kinds``, for one try."""

    def __init__(self, item: Item, out: Outputs, kinds: list[str], *, overwrite: bool) -> None:
        self.item, self.out, self.kinds, self.overwrite = item, out, kinds, overwrite
        self.planned = [out.rel(k) for k in kinds]
        self._earlier: set[str] = set()
        self._before: dict[Path, object] = {}

    def refusal(self) -> str | None:
        """Why the outputs may not be written, else None."""
        why = self.out.outside()
        if why is None:
            why = output_conflict(
                self.out,
                self.kinds,
                InputSet([self.item.path, self.item.gt]),
                written_before(self.out),
                own_state(self.out),
                overwrite=self.overwrite,
            )
        return why

    def clear_stale(self) -> None:
        for p in self.out.stale_temps():
            p.unlink(missing_ok=True)

    def start(self, fp: str) -> None:
        """Note what exists (and which files earlier runs wrote), then write the started state."""
        self._earlier = written_before(self.out)
        self._before = identities(self.out.out_dir / r for r in self.planned)
        write_started(self.out, fp, self.item.path, self.planned)

    def undo(self) -> None:
        """A failed row has no outputs: nothing this attempt or an earlier run of this video
        wrote stays; a file vidcam did not write and did not replace stays."""
        for p, ident in self._before.items():
            mine = identities([p])[p] != ident or self.out.rel_of(p) in self._earlier
            if mine and p.is_file() and not p.is_symlink():
                p.unlink(missing_ok=True)


def check_regular(path: Path, what: str = "input") -> None:
    """``path`` is a regular file (reading a FIFO or a device would block the batch)."""
    if not path.is_file():
        state = "is not a regular file" if path.exists() else "does not exist"
        raise VidcamError(f"{what} {str(path)!r} {state}")
