"""Where a batch writes: per-video output names that mirror the inputs and never collide.

For the key ``sub/dir/clip.mp4`` the outputs are ``sub/dir/clip.mp4`` (annotated video),
``clip.json``, ``clip.maps.npz``, ``clip.preview.png``, ``clip.html``, ``clip.metrics.json``
and the state files ``clip.done.json`` (written last: sizes + sha256 of every output) or
``clip.failed.json``. Two inputs that would share a name (``clip.mp4`` and ``clip.avi`` in
one folder) keep their extension in the base (``clip.avi.mp4``); run-level files
(``index.jsonl``, ``summary.csv``, ``index.html``) are never taken.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from vidcam.errors import VidcamError

#: output kind -> suffix appended to the base name
SUFFIXES: dict[str, str] = {
    "video": ".mp4",
    "json": ".json",
    "maps": ".maps.npz",
    "preview": ".preview.png",
    "report": ".html",
    "metrics": ".metrics.json",
}
STATE_SUFFIXES = {"done": ".done.json", "failed": ".failed.json"}
RUN_FILES = ("index.jsonl", "summary.csv", "classes.csv", "index.html")


@dataclass(frozen=True)
class Outputs:
    """The files of one video under ``out_dir``; ``base`` is POSIX, relative, no extension."""

    out_dir: Path
    base: str

    def rel(self, kind: str) -> str:
        """Output ``kind`` (a key of :data:`SUFFIXES` or ``done``/``failed``) relative to out_dir."""
        return self.base + (SUFFIXES.get(kind) or STATE_SUFFIXES[kind])

    def path(self, kind: str) -> Path:
        return self.out_dir / self.rel(kind)

    def rel_of(self, p: Path) -> str:
        """``p`` (a path under ``out_dir``) relative to it, POSIX."""
        return PurePosixPath(*p.relative_to(self.out_dir).parts).as_posix()

    @property
    def folder(self) -> Path:
        return (self.out_dir / self.base).parent

    def outside(self) -> str | None:
        """None when every output and state file of this video, resolved (links followed),
        lies inside the resolved ``out_dir``; else a one-line reason for its failed row."""
        root = self.out_dir.resolve()
        for kind in (*SUFFIXES, *STATE_SUFFIXES):
            rel = self.rel(kind)
            target = (self.out_dir / rel).resolve()
            if target == root or not target.is_relative_to(root):
                return (
                    f"output {rel!r} would be written to {str(target)!r}, outside the output "
                    f"folder {str(root)!r} (a link or '..' leads out); not written"
                )
        return None

    def check_inside(self) -> None:
        """Raise :class:`VidcamError` when :meth:`outside` finds a file outside ``out_dir``."""
        why = self.outside()
        if why is not None:
            raise VidcamError(why)

    def stale_temps(self) -> list[Path]:
        """Temporary files a killed run left for this video (``.NAME.tmp-XXXX.ext``)."""
        if not self.folder.is_dir():
            return []
        stem = PurePosixPath(self.base).name
        found = []
        for kind in (*SUFFIXES, *STATE_SUFFIXES):
            name = PurePosixPath(self.rel(kind)).name
            final_stem = name[: -len(PurePosixPath(name).suffix)]
            found.extend(self.folder.glob(f".{_escape(final_stem[:120])}.tmp-*"))
        return sorted({p for p in found if p.name.startswith(f".{stem}")})


def _escape(s: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in s)


def plan_layout(
    out_dir: str | Path, keys: Iterable[str], avoid: Callable[[Path], object] | None = None
) -> dict[str, Outputs]:
    """key -> :class:`Outputs`, in order; every file name is distinct across the run, and
    none is a path for which ``avoid`` is truthy (an input of the run: ``-o`` holding the
    inputs gives ``clip.avi`` the base ``clip.avi`` when ``clip.mp4`` is an input)."""
    out = Path(out_dir)
    taken: set[str] = set(RUN_FILES)
    plan: dict[str, Outputs] = {}
    for key in keys:
        p = PurePosixPath(key)
        stem = str(p.with_suffix("")) if p.suffix else key
        candidates = [stem, key] + [f"{stem}~{n}" for n in range(2, 10_000)]
        for base in candidates:
            names = {base + s for s in (*SUFFIXES.values(), *STATE_SUFFIXES.values())}
            if not names & taken and not (avoid and any(avoid(out / n) for n in names)):
                taken |= names
                plan[key] = Outputs(out, base)
                break
    return plan
