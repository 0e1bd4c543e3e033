"""Where a registered model's pretrained weights come from, and loading them safely.

A :class:`WeightsSource` is one of

* ``"hub"``: a URL downloaded into the torch hub cache (``$TORCH_HOME/hub/checkpoints``), with
  the FULL ``sha256`` of the published file (:data:`PUBLISHED_SHA256`). A cached file's whole
  digest is compared on *every* load before it is unpickled, so a poisoned cache is refused.
  The 8 hex digits in torchvision's file names are never enough: a 32-bit prefix can be
  forged in CPU-minutes. Without a full digest a cached file is never trusted (the weights are
  then downloaded afresh to a temporary file, or passed with ``--weights PATH``);
* ``"bundled"``: a file shipped inside :mod:`vidcam.models` (``resource``);
* ``"i3d"``: DeepMind's I3D, converted and cached by :mod:`vidcam.models.i3d_weights`.

Every file, a user's ``--weights PATH`` included, is read with ``weights_only=True``.
"""

from __future__ import annotations

import hmac
import importlib.resources
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal
from urllib.error import URLError

import torch
import torch.hub

from vidcam.errors import VidcamError
from vidcam.models.checkpoint import (
    cached_file,
    extract_state_dict,
    hash_prefix_of,
    hub_checkpoint_dir,
    load_weights_only,
    read_checkpoint,
    sha256_hex,
    url_file_name,
)

WeightsKind = Literal["hub", "bundled", "i3d"]
WeightsStatus = Literal["bundled", "yes", "no"]
_HEX = frozenset("0123456789abcdef")

#: Full sha256 of torchvision's Kinetics-400 video checkpoints, by file name. torchvision
#: publishes only the first 8 hex digits (in the file name); these full digests were published
#: by projects that verified the official downloads from download.pytorch.org, each found in
#: at least one public repository and each agreeing with the prefix in its name (checked at
#: import by :class:`WeightsSource`). r3d_18, mc3_18, r2plus1d_18: two independent
#: repositories with file sizes (133,546,016 / 46,841,888 / 126,162,996 bytes); mvit_v2_s:
#: two; swin3d_t: one. No full digest was found for s3d-d76dad2f.pth and
#: mvit_v1_b-dbeb1030.pth: their cached files are refused (pass --weights after checking them).
PUBLISHED_SHA256: dict[str, str] = {
    "r3d_18-b3b3357e.pth": "b3b3357ead25631ec9c57362ff2128a92d0427e01e2cd184951a44380c3f2e9d",
    "mc3_18-a90a0ba3.pth": "a90a0ba35ca1242d15b77511ff28bfb29cc596988b5ea36081042f8e2f54212b",
    "r2plus1d_18-91a641e6.pth": "91a641e6c2ab531d1aca5f4321b4d802ec5c3babc15df855cdb6e39c6a1107c8",
    "mvit_v2_s-ae3be167.pth": "ae3be16733081f6d1cd40e4ab980ca23d6df6dc6486d15ada05a5e8ab8c9b975",
    "swin3d_t-7615ae03.pth": "7615ae035996b65eb38dad437ae533d2dfcd36f9f89d28c0f0fa7bfb8e6b3130",
}


@dataclass(frozen=True)
class WeightsSource:
    """Where pretrained weights come from (see the module docstring for the kinds).

    ``url`` and ``sha256`` belong to ``"hub"`` sources (``sha256``: the full 64-hex digest,
    None when none is published; a prefix is refused), ``resource`` (a path inside the ``vidcam.models`` package) to ``"bundled"``
    ones; ``note`` is the human-readable origin shown by ``vidcam models``.
    """

    kind: WeightsKind
    note: str
    url: str | None = None
    sha256: str | None = None
    resource: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("hub", "bundled", "i3d"):
            raise VidcamError(f"WeightsSource: unknown kind {self.kind!r}")
        if (self.kind == "hub") != (self.url is not None):
            raise VidcamError("WeightsSource: a url is given exactly for kind 'hub'")
        if (self.kind == "bundled") != (self.resource is not None):
            raise VidcamError("WeightsSource: a resource is given exactly for kind 'bundled'")
        if self.sha256 is not None and (
            self.kind != "hub" or len(self.sha256) != 64 or set(self.sha256) - _HEX
        ):
            raise VidcamError(
                f"WeightsSource: sha256 {self.sha256!r} must be the full digest (64 lowercase "
                "hex digits) of a 'hub' file; a prefix proves nothing"
            )
        named = hash_prefix_of(url_file_name(self.url)) if self.url else None
        if self.sha256 is not None and named is not None and not self.sha256.startswith(named):
            raise VidcamError(
                f"WeightsSource: sha256 {self.sha256[:16]}... contradicts the prefix {named} in "
                f"the file name {url_file_name(self.url)}"
            )

    @classmethod
    def hub(cls, url: str, *, note: str, sha256: str | None = None) -> WeightsSource:
        """A torch hub download; ``sha256`` (full digest) defaults to the pinned one of
        :data:`PUBLISHED_SHA256`, else None: never the prefix in the file name."""
        return cls("hub", note, url=url, sha256=sha256 or PUBLISHED_SHA256.get(url_file_name(url)))

    @property
    def file_name(self) -> str | None:
        """The cached file's name (``"hub"``), the bundled file's name, or None (I3D)."""
        if self.url is not None:
            return url_file_name(self.url)
        return Path(self.resource).name if self.resource is not None else None

    def status(self) -> WeightsStatus:
        """``"bundled"`` (ships with vidcam), ``"yes"`` (loads offline) or ``"no"``; a cached
        hub file without a published hash counts as ``"no"``: it would not be loaded."""
        if self.kind == "bundled":
            return "bundled" if _resource(self.resource).is_file() else "no"
        if self.kind == "i3d":
            from vidcam.models import i3d_weights

            env = os.environ.get(i3d_weights.ENV_WEIGHTS)
            path = Path(env).expanduser() if env else i3d_weights.cache_path()
            return "yes" if path.is_file() else "no"
        if self.sha256 is None:
            return "no"
        return "yes" if cached_file(self.url).is_file() else "no"

    def describe(self) -> str:
        """Where ``pretrained=True`` takes the weights from, for ``LoadedModel.weights_source``."""
        if self.kind != "hub":
            return f"pretrained: {self.note}"
        if self.sha256 is None:
            return f"pretrained: {self.url} (fresh download: no published sha256 to check a cache)"
        return (
            f"pretrained: {self.url} (torch hub cache {cached_file(self.url)}, full sha256 checked)"
        )

    def state_dict(
        self, weights: str | os.PathLike | None, *, model_name: str, progress: bool = True
    ) -> tuple[dict[str, torch.Tensor], str]:
        """``(state dict, where it came from)``: the local file ``weights`` when given, else
        the published weights."""
        if self.kind == "i3d":
            from vidcam.models.i3d_weights import i3d_state_dict

            origin = repr(str(weights)) if weights is not None else "the I3D Kinetics-400 weights"
            return i3d_state_dict(weights, progress=progress), origin
        if weights is not None:
            return read_checkpoint(weights), repr(str(weights))
        if self.kind == "bundled":
            with importlib.resources.as_file(_resource(self.resource)) as path:
                return read_checkpoint(path), f"the bundled {self.file_name}"
        return _hub_state_dict(self, model_name=model_name, progress=progress), self.url


def _resource(name: str) -> Traversable:
    return importlib.resources.files("vidcam.models").joinpath(name)


def _verified_bytes(path: Path, sha256: str) -> bytes:
    """The bytes of ``path`` if their whole sha256 is ``sha256`` (64 hex digits); read once,
    so what is checked is exactly what gets unpickled."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise VidcamError(f"cannot read cached weights {path} ({exc})") from exc
    got = sha256_hex(data)
    if len(sha256) != 64 or not hmac.compare_digest(got, sha256):
        raise VidcamError(
            f"cached weights {path} fail verification (sha256 {got}, pinned {sha256}): the file is corrupt or was tampered with and is not loaded; delete it "
            "to download it again, or pass --weights PATH to a checkpoint you trust"
        )
    return data


def _download(url: str, dst: Path, sha256: str | None, *, model_name: str, progress: bool):
    """``torch.hub.download_url_to_file`` with network errors as a :class:`VidcamError` saying
    where the cache is and how to go offline. Checked against the full ``sha256`` when pinned,
    else (a fresh download that is never cached) against the prefix in the file name."""
    check = sha256 or hash_prefix_of(url_file_name(url))
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        if progress:
            sys.stderr.write(f'Downloading: "{url}" to {dst}\n')
        torch.hub.download_url_to_file(url, str(dst), check, progress=progress)
    except (URLError, OSError, RuntimeError) as exc:
        name, cache = url_file_name(url), hub_checkpoint_dir()
        if sha256 is not None:
            where = (
                f"torch.hub caches weights in {cache} ($TORCH_HOME/hub/checkpoints): copy {name} "
                "there (it is checked against its published sha256), or pass --weights PATH"
            )
        else:
            where = (
                f"vidcam does not take {name} from the torch hub cache {cache} "
                "($TORCH_HOME/hub/checkpoints) as it pins no full sha256 for it: download it "
                "elsewhere, check it yourself and pass --weights PATH"
            )
        raise VidcamError(
            f"could not download the pretrained weights of {model_name!r} from {url} "
            f"({' '.join(str(exc).split())}). {where} to a local checkpoint (weights=PATH), or use "
            "pretrained=False for random weights"
        ) from exc


def _hub_state_dict(
    src: WeightsSource, *, model_name: str, progress: bool
) -> dict[str, torch.Tensor]:
    url, sha256 = src.url, src.sha256
    path = cached_file(url)
    fix = "delete it to download it again, or pass --weights PATH to a checkpoint you trust"
    if sha256 is not None:
        if os.path.lexists(path) and (path.is_symlink() or not path.is_file()):
            raise VidcamError(
                f"cached weights {path} are not a regular file (a link, a FIFO or a device) and "
                f"are not read; {fix}"
            )
        if not path.is_file():
            _download(url, path, sha256, model_name=model_name, progress=progress)
        data = _verified_bytes(path, sha256)
        return extract_state_dict(
            load_weights_only(data, what=f"cached weights {path}", fix=fix), url
        )
    if os.path.lexists(path):
        named = hash_prefix_of(src.file_name)
        hint = f" (the {named} in its name is only a {4 * len(named)}-bit prefix)" if named else ""
        raise VidcamError(
            f"refusing to load cached weights {path}: vidcam pins no full sha256 for "
            f"{src.file_name}{hint}, so it cannot tell that file from a tampered one; check it "
            f"yourself (sha256sum) and pass --weights {path} (read as tensors only, "
            "weights_only=True), or delete it to use a fresh download"
        )
    with tempfile.TemporaryDirectory(prefix="vidcam-weights-") as tmp:
        fresh = Path(tmp) / src.file_name
        _download(url, fresh, None, model_name=model_name, progress=progress)
        data = fresh.read_bytes()
    warnings.warn(
        f"{src.file_name} has no published sha256, so vidcam does not cache it; to skip the "
        f"download next time, save {url} and pass --weights PATH",
        UserWarning,
        stacklevel=4,
    )
    fix = "the download is not a PyTorch checkpoint; pass --weights PATH to a checkpoint"
    return extract_state_dict(load_weights_only(data, what=f"download {url}", fix=fix), url)
