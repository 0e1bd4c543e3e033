"""Output paths: the checks every command runs before any work, and ONE atomic write.

Every file vidcam writes (videos, JSON, tables, plots, maps, pages) goes through
:func:`check_output` first (before any model runs) and is written with :class:`AtomicFile`
or :func:`atomic_write`: a hidden temporary file next to the target, renamed over it only
when complete, so a crash, a full disk or a signal never leaves a partial output.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from vidcam.errors import VidcamError

#: temporary files being written right now (removed on abort; a signal handler may sweep them)
LIVE_TEMPS: set[Path] = set()


_NAME_MAX = 255  # bytes per path component on every common file system
_TEMP_EXTRA = len(".tmp-XXXXXXXX.")  # what a temporary name adds to the stem


def check_name(what: str, p: Path) -> None:
    """The file name fits the file system's limit, with room for vidcam's temporary name."""
    size = len(os.fsencode(p.name))
    if size + _TEMP_EXTRA + 1 > _NAME_MAX:
        raise VidcamError(
            f"{what}: the file name is {size} bytes long; the limit is "
            f"{_NAME_MAX - _TEMP_EXTRA - 1} (choose a shorter name)"
        )


def check_writable(what: str, p: Path) -> None:
    """``p`` can be written: not a directory, its directory exists and is writable."""
    check_name(what, p)
    if p.exists() and p.is_dir():
        raise VidcamError(f"{what} {str(p)!r} is a directory; give a file name")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise VidcamError(f"{what} directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise VidcamError(f"{what} directory {str(parent)!r} is not writable")


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(
    what: str, p: str | Path, *, inputs: Sequence[str | Path] = (), overwrite: bool = False
) -> Path:
    """Validate an output path before any work; returns it as a :class:`Path`.

    Refuses: a directory, a missing or read-only directory, any of ``inputs`` (also through a
    link), an existing file without ``overwrite``, and — even with ``overwrite`` — anything
    that is not a regular file (a device such as /dev/null, a FIFO, a symlink).
    """
    out = Path(p)
    try:
        _check_output(what, out, inputs, overwrite)
    except OSError as exc:  # e.g. a path component that is too long, a permission denied
        raise VidcamError(f"{what} {str(out)!r}: {exc.strerror or exc}") from None
    return out


def _check_output(what: str, out: Path, inputs: Sequence[str | Path], overwrite: bool) -> None:
    check_writable(what, out)
    for src in inputs:
        if _same_file(out, Path(src)):
            raise VidcamError(f"{what} {str(out)!r} is the input file; choose another name")
    if out.is_symlink():
        raise VidcamError(f"{what} {str(out)!r} is a symbolic link; give a regular file path")
    if out.exists():
        if not out.is_file():
            raise VidcamError(
                f"{what} {str(out)!r} exists and is not a regular file; choose another name"
            )
        if not overwrite:
            raise VidcamError(f"{what} {str(out)!r} already exists; pass --overwrite to replace it")
    return out


def open_regular(path: str | Path, flags: int = os.O_RDONLY, mode: int = 0o666) -> int:
    """``os.open`` that never follows a final symbolic link (``O_NOFOLLOW``) nor blocks on a
    FIFO (``O_NONBLOCK``, cleared once open); anything but a regular file is refused with a
    one-line :class:`VidcamError`. Returns the descriptor (blocking)."""
    p = Path(path)
    try:
        fd = os.open(p, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO) or os.path.islink(p):
            kind = "a symbolic link" if os.path.islink(p) else "not a regular file"
            raise VidcamError(f"{str(p)!r} is {kind}; vidcam opens only regular files") from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise VidcamError(f"{str(p)!r} is not a regular file (a FIFO, a device, a folder?)")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_limited(path: str | Path, limit: int, what: str = "ground truth") -> bytes:
    """The bytes of a REGULAR file of at most ``limit`` bytes (checked before reading; a FIFO
    never blocks); errors are one line naming ``what`` and the file."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block
    except OSError as exc:
        raise VidcamError(f"{what} {str(p)!r} cannot be read: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise VidcamError(
                f"{what} {str(p)!r} is not a regular file (a folder, FIFO or device); give a file"
            )
        if st.st_size > limit:
            raise VidcamError(
                f"{what} {str(p)!r} is {st.st_size} bytes, over the limit of {limit} bytes for "
                "this kind of file; is it the right file?"
            )
        data = _read_up_to(fd, limit + 1)
    except OSError as exc:
        raise VidcamError(f"{what} {str(p)!r} cannot be read: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > limit:  # it grew while being read
        raise VidcamError(f"{what} {str(p)!r} is over the limit of {limit} bytes")
    return data


def read_regular(path: str | Path, limit: int) -> bytes:
    """The bytes of the regular file ``path`` (links not followed, FIFOs and devices refused,
    see :func:`open_regular`); a file over ``limit`` bytes is a :class:`VidcamError`."""
    fd = open_regular(path)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise VidcamError(f"{str(path)!r} is {size} bytes; the limit is {limit}")
        data = _read_up_to(fd, limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:  # it grew while being read
        raise VidcamError(f"{str(path)!r} is over {limit} bytes")
    return data


def _read_up_to(fd: int, n: int) -> bytes:
    """At most ``n`` bytes of ``fd``, read in 1 MiB chunks (fewer at the end of the file)."""
    chunks, left = [], n
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def commit_all(files: Sequence[AtomicFile]) -> None:
    """Commit every staged file; when one fails, those committed already are removed again
    and the rest discarded (all the outputs of a command, or none)."""
    done: list[AtomicFile] = []
    try:
        for f in files:
            f.commit()
            done.append(f)
    except BaseException:
        for f in files:
            f.discard()
        for f in done:
            f.final.unlink(missing_ok=True)
        raise


_STAMP_BYTES = 1 << 20


def file_stamp(path: str | Path) -> tuple[int, int, str]:
    """(size, mtime_ns, sha256 of the first and last MiB): cheap evidence that a file is still
    the one read before (an input rewritten in place changes at least one of them)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        h.update(f.read(_STAMP_BYTES))
        if st.st_size > 2 * _STAMP_BYTES:
            f.seek(-_STAMP_BYTES, os.SEEK_END)
            h.update(f.read(_STAMP_BYTES))
    return st.st_size, st.st_mtime_ns, h.hexdigest()


def check_distinct(named: Sequence[tuple[str, str | Path | None]]) -> None:
    """No two of the given outputs are the same file."""
    seen: dict[Path, str] = {}
    for what, p in named:
        if p is None:
            continue
        key = Path(p).resolve()
        if key in seen:
            raise VidcamError(f"{seen[key]} and {what} must be different files")
        seen[key] = what


class AtomicFile:
    """A hidden temporary file next to ``final``; :meth:`commit` renames it over ``final``,
    :meth:`discard` deletes it. As a context manager: commit on success, discard on error.

    With ``overwrite=False`` the commit never replaces a file that appeared meanwhile (another
    run writing the same new name): the name is created atomically (a hard link) or not at all.
    """

    def __init__(self, final: str | Path, *, overwrite: bool = True) -> None:
        self.final = Path(final)
        self.overwrite = overwrite
        parent = self.final.parent if str(self.final.parent) else Path(".")
        try:
            fd, tmp = tempfile.mkstemp(
                prefix=f".{self.final.stem[:120]}.tmp-", suffix=self.final.suffix[:16], dir=parent
            )
        except OSError as exc:
            raise VidcamError(f"cannot write {str(self.final)!r}: {exc.strerror}") from None
        os.close(fd)
        self.tmp = Path(tmp)
        self.done = False
        LIVE_TEMPS.add(self.tmp)

    def commit(self) -> Path:
        if self.done:
            return self.final
        try:
            _match_umask(self.tmp)
            if self.overwrite:
                _refuse_non_regular(self.final)  # one appeared since check_output
                os.replace(self.tmp, self.final)
            else:
                _create_no_replace(self.tmp, self.final)
        except NotRegularError as exc:
            self.discard()
            raise VidcamError(
                f"{str(self.final)!r} became {exc} while vidcam ran; not replaced (only regular "
                "files are ever replaced)"
            ) from None
        except FileExistsError:
            self.discard()
            raise VidcamError(
                f"{str(self.final)!r} was created by someone else while vidcam ran; not "
                "replaced (pass --overwrite to replace it)"
            ) from None
        except OSError as exc:
            self.discard()
            raise VidcamError(f"cannot write {str(self.final)!r}: {exc.strerror}") from None
        self.done = True
        LIVE_TEMPS.discard(self.tmp)
        return self.final

    def discard(self) -> None:
        self.done = True
        LIVE_TEMPS.discard(self.tmp)
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


@contextmanager
def atomic_write(path: str | Path, *, overwrite: bool = True) -> Iterator[Path]:
    """``with atomic_write(p) as tmp: write to tmp`` — ``p`` appears only when complete.

    Write errors (a full disk, a vanished directory) become one-line :class:`VidcamError`.
    ``overwrite=False``: fail rather than replace a file created meanwhile.
    """
    f = AtomicFile(path, overwrite=overwrite)
    try:
        yield f.tmp
    except OSError as exc:
        f.discard()
        raise VidcamError(f"cannot write {str(f.final)!r}: {exc.strerror or exc}") from None
    except BaseException:
        f.discard()
        raise
    f.commit()


def write_text(path: str | Path, text: str, *, overwrite: bool = True) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_write(path, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def remove_live_temps() -> None:
    """Delete every temporary file still being written (used when a signal stops the run)."""
    for p in list(LIVE_TEMPS):
        p.unlink(missing_ok=True)
        LIVE_TEMPS.discard(p)


class NotRegularError(OSError):
    """The name to replace is a symbolic link, a device, a FIFO or a directory."""


def _refuse_non_regular(final: Path) -> None:
    if final.is_symlink():
        raise NotRegularError("a symbolic link")
    if final.exists() and not final.is_file():
        raise NotRegularError("something other than a regular file")


def _create_no_replace(tmp: Path, final: Path) -> None:
    """Give ``tmp`` the name ``final`` unless ``final`` exists (FileExistsError then)."""
    try:
        os.link(tmp, final)  # atomic: fails if final exists
    except FileExistsError:
        raise
    except OSError:  # no hard links here (some network / FAT file systems): best effort
        if os.path.lexists(final):
            raise FileExistsError(str(final)) from None
        os.rename(tmp, final)
        return
    tmp.unlink()


def _match_umask(path: Path) -> None:
    """mkstemp makes 0600 files; give the output the usual 0666 & ~umask mode."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)
