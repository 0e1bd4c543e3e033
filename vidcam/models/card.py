"""Model cards: a small TOML file saying how to feed a model and what it outputs.

    clip_len = 16                 # frames per clip
    fps = 15                      # or: stride = 2 (every 2nd source frame)
    resize_short = 128            # short side before the centre crop
    crop = [112, 112]             # (H, W), or one number for a square
    value_range = [0, 1]          # pixel scale mean/std refer to: [0, 1] or [0, 255]
    mean = [0.432, 0.395, 0.376]  # per channel, in channel_order, in value_range units
    std = [0.228, 0.221, 0.217]
    channel_order = "RGB"         # or "BGR"
    layout = "NCTHW"              # or "NTCHW" (Hugging Face style (N, T, C, H, W))
    labels = "labels.txt"         # a file relative to the card, or a list of names
    layer = "layer4"              # or a list (fused); names inside the user's module

Every key is optional; a model without an input spec of its own (a bare ``nn.Module``) needs
clip_len, crop, mean, std and fps or stride. Flags override the card, the card overrides the
model's own settings. ``value_range`` and ``channel_order`` are folded into the
:class:`~vidcam.models.spec.InputSpec` (which is RGB in [0, 1]) and a channel flip;
``layout`` becomes a permutation (:class:`~vidcam.models.wrap.InputAdapter`).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidcam.errors import VidcamError
from vidcam.models.labels import read_labels_file
from vidcam.models.spec import InputSpec
from vidcam.paths import read_limited

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

MAX_CARD_BYTES = 1 << 20
KEYS = (
    "clip_len",
    "fps",
    "stride",
    "resize_short",
    "crop",
    "mean",
    "std",
    "value_range",
    "channel_order",
    "layout",
    "labels",
    "layer",
)
LAYOUTS = ("NCTHW", "NTCHW")
ORDERS = ("RGB", "BGR")
_REQUIRED = ("clip_len", "crop", "mean", "std")


@dataclass(frozen=True)
class ModelCard:
    """A parsed card. ``input`` holds InputSpec fields it sets (RGB, [0, 1] units);
    ``layout``, ``channel_order`` are None when not given."""

    path: Path
    input: dict[str, Any] = field(default_factory=dict)
    layout: str | None = None
    channel_order: str | None = None
    labels: tuple[str, ...] | None = None
    layer: str | list[str] | None = None

    @property
    def adapts(self) -> bool:
        """Whether the module needs an input adapter (NTCHW layout or BGR channels)."""
        return self.layout == "NTCHW" or self.channel_order == "BGR"

    def spec(self, base: InputSpec | None) -> InputSpec:
        """The input spec: ``base`` (the model's own, may be None) with the card's fields."""
        fields = dict(self.input)
        if base is None:
            missing = [k for k in _REQUIRED if k not in fields]
            if "fps" not in fields and "stride" not in fields:
                missing.append("fps or stride")
            if missing:
                raise VidcamError(
                    f"card {self.path}: the model has no input spec of its own, so the card "
                    f"needs {', '.join(missing)}"
                )
            fields.setdefault("resize_short", min(fields["crop"]))
            return _spec(self.path, fields)
        merged = dataclasses.asdict(base)
        if "fps" in fields or "stride" in fields:
            merged["fps"] = merged["stride"] = None
        merged.update(fields)
        merged["crop"] = tuple(merged["crop"])
        return _spec(self.path, merged)


def _spec(path: Path, fields: dict[str, Any]) -> InputSpec:
    try:
        return InputSpec(**fields)
    except VidcamError as exc:
        raise VidcamError(f"card {path}: {exc}") from None


def read_card(path: str | os.PathLike) -> ModelCard:
    """Parse and check the card at ``path``; every problem is a one-line error naming the
    card and the key."""
    p = Path(path).expanduser()
    if not p.is_file():
        state = "is not a regular file" if p.exists() else "does not exist"
        raise VidcamError(f"card {str(p)!r} {state}; pass --card MODEL.toml")
    data = read_limited(p, MAX_CARD_BYTES, "card")
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise VidcamError(f"card {p}: not valid UTF-8 TOML ({exc})") from None
    for key in raw:
        if key not in KEYS:
            raise VidcamError(f"card {p}: unknown key {key!r}; known keys: {', '.join(KEYS)}")
    return _parse(p, raw)


def _parse(p: Path, raw: dict[str, Any]) -> ModelCard:
    k = _Checker(p)
    fields: dict[str, Any] = {}
    for key in ("clip_len", "stride", "resize_short"):
        if key in raw:
            fields[key] = k.positive_int(key, raw[key])
    if "fps" in raw:
        fields["fps"] = k.positive_number("fps", raw["fps"])
    if "fps" in raw and "stride" in raw:
        raise VidcamError(f"card {p}: key 'stride': give fps or stride, not both")
    if "crop" in raw:
        fields["crop"] = k.crop(raw["crop"])
    scale = k.value_range(raw["value_range"]) if "value_range" in raw else 1.0
    order = (
        k.choice("channel_order", raw["channel_order"], ORDERS) if "channel_order" in raw else None
    )
    for key in ("mean", "std"):
        if key in raw:
            values = [v / scale for v in k.triple(key, raw[key])]
            fields[key] = tuple(values[::-1] if order == "BGR" else values)
    if scale != 1.0:  # value range without mean/std: the raw pixel values
        fields.setdefault("mean", (0.0, 0.0, 0.0))
        fields.setdefault("std", (1.0 / scale,) * 3)
    return ModelCard(
        path=p,
        input=fields,
        layout=k.choice("layout", raw["layout"], LAYOUTS) if "layout" in raw else None,
        channel_order=order,
        labels=k.labels(raw["labels"]) if "labels" in raw else None,
        layer=k.layer(raw["layer"]) if "layer" in raw else None,
    )


class _Checker:
    """Type checks of card values; each failure names the card and the key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, want: str, got: Any) -> VidcamError:
        return VidcamError(f"card {self.path}: key {key!r} must be {want}, got {got!r}")

    def positive_int(self, key: str, v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise self.fail(key, "a positive integer", v)
        return v

    def positive_number(self, key: str, v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
            raise self.fail(key, "a positive number", v)
        return float(v)

    def crop(self, v: Any) -> tuple[int, int]:
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return (v, v)
        ok = isinstance(v, list) and len(v) == 2
        if not ok or any(isinstance(x, bool) or not isinstance(x, int) or x < 1 for x in v):
            raise self.fail("crop", "a positive integer or [height, width]", v)
        return (v[0], v[1])

    def triple(self, key: str, v: Any) -> list[float]:
        if not isinstance(v, list) or len(v) != 3 or not all(_number(x) for x in v):
            raise self.fail(key, "a list of 3 numbers (one per channel)", v)
        return [float(x) for x in v]

    def value_range(self, v: Any) -> float:
        ok = isinstance(v, list) and len(v) == 2 and all(_number(x) for x in v)
        if ok and v[0] == 0 and v[1] in (1, 255):
            return float(v[1])
        raise self.fail("value_range", "[0, 1] or [0, 255]", v)

    def choice(self, key: str, v: Any, choices: Sequence[str]) -> str:
        if isinstance(v, str) and v.upper() in choices:
            return v.upper()
        raise self.fail(key, " or ".join(repr(c) for c in choices), v)

    def labels(self, v: Any) -> tuple[str, ...]:
        if isinstance(v, str):
            path = Path(v).expanduser()
            path = path if path.is_absolute() else self.path.parent / path
            return tuple(read_labels_file(path, what=f"card {self.path}: labels file"))
        if isinstance(v, list) and v and all(isinstance(x, str) for x in v):
            return tuple(v)
        raise self.fail("labels", "a labels file path or a non-empty list of names", v)

    def layer(self, v: Any) -> str | list[str]:
        if isinstance(v, str) and v:
            return v
        if isinstance(v, list) and v and all(isinstance(x, str) and x for x in v):
            return v[0] if len(v) == 1 else list(v)
        raise self.fail("layer", "a layer name or a non-empty list of names", v)


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _toml_list(values: Sequence[Any]) -> str:
    return "[" + ", ".join(_toml_value(v) for v in values) + "]"


def _toml_value(v: Any) -> str:
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, list | tuple):
        return _toml_list(v)
    return str(v)


def format_card(
    spec: InputSpec, *, layers: Sequence[str] = (), labels: str | None = None, name: str = ""
) -> str:
    """A card for ``spec`` (a registered model's: reading it back gives the same spec), as a
    starting template; ``labels`` (a label set's name) is shown as a comment."""
    lines = [f"# vidcam model card{f' of {name!r}' if name else ''}: edit and pass --card FILE"]
    lines.append(f"clip_len = {spec.clip_len}")
    if spec.fps is not None:
        lines.append(f"fps = {_toml_value(float(spec.fps))}")
    else:
        lines.append(f"stride = {spec.stride}")
    lines += [
        f"resize_short = {spec.resize_short}",
        f"crop = {_toml_list(list(spec.crop))}",
        "value_range = [0, 1]",
        f"mean = {_toml_list([float(v) for v in spec.mean])}",
        f"std = {_toml_list([float(v) for v in spec.std])}",
        'channel_order = "RGB"',
        'layout = "NCTHW"',
    ]
    if layers:
        value = layers[0] if len(layers) == 1 else list(layers)
        lines.append(f"layer = {_toml_value(value)}")
    where = f" (default: the model's own, {labels})" if labels else ""
    lines.append(f'# labels = "labels.txt"  # one class name per line{where}')
    return "\n".join(lines) + "\n"
