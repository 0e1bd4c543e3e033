"""The explanation methods as values: one :class:`Method` per id, parsed once.

A method id names what the engine computes (``cam``: one of
:data:`vidcam.cam.explainer.METHODS`, the CAMs and the input-space perturbation methods
``rise`` and ``extremal``), whether the CAM is multiplied with guided backprop
(``guided``; only for Grad-CAM and Grad-CAM++, as in Selvaraju et al.), and the display
``title``. Panels, tables and JSON key by ``id``; titles are only for rendering.
:func:`parse_panels` reads ``--side-by-side``'s optional list of ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vidcam.errors import VidcamError


@dataclass(frozen=True)
class Method:
    """One explanation method: ``id`` ("guided-gradcam++"), engine ``cam`` ("gradcam++"),
    ``guided`` (pixel-space product with guided backprop) and ``title`` ("Guided Grad-CAM++")."""

    id: str
    cam: str
    guided: bool
    title: str

    @property
    def base(self) -> Method:
        """The CAM this method is built on (itself when not guided)."""
        return METHODS[self.cam]

    def side_by_side(self) -> tuple[Method, ...]:
        """The panels of ``--side-by-side`` without a list: the CAM next to its guided
        product, Grad-CAM next to Grad-CAM++, or Grad-CAM++ next to any other method."""
        if self.guided:
            return (self.base, self)
        if self.id in ("gradcam", "gradcam++"):
            return (METHODS["gradcam"], METHODS["gradcam++"])
        return (METHODS["gradcam++"], self)


METHODS: dict[str, Method] = {
    m.id: m
    for m in (
        Method("gradcam", "gradcam", False, "Grad-CAM"),
        Method("gradcam++", "gradcam++", False, "Grad-CAM++"),
        Method("guided-gradcam", "gradcam", True, "Guided Grad-CAM"),
        Method("guided-gradcam++", "gradcam++", True, "Guided Grad-CAM++"),
        Method("xgradcam", "xgradcam", False, "XGrad-CAM"),
        Method("layercam", "layercam", False, "LayerCAM"),
        Method("hirescam", "hirescam", False, "HiResCAM"),
        Method("eigencam", "eigencam", False, "Eigen-CAM"),
        Method("scorecam", "scorecam", False, "Score-CAM"),
        Method("rise", "rise", False, "RISE"),
        Method("extremal", "extremal", False, "Extremal perturbation"),
    )
}


def get_method(method: str | Method) -> Method:
    """The :class:`Method` called ``method``; unknown ids raise a VidcamError listing all."""
    if isinstance(method, Method):
        return method
    found = METHODS.get(str(method).strip().lower())
    if found is None:
        raise VidcamError(f"method {method!r} is not one of {', '.join(METHODS)}")
    return found


def parse_panels(spec: bool | str | Sequence[str] | None) -> tuple[Method, ...] | None:
    """``--side-by-side``'s value -> the panels it asks for, or None for "the default pair".

    ``True``/``""`` -> None (:meth:`Method.side_by_side`); ``False``/None -> ``()`` (no extra
    panels); ``"gradcam,layercam,eigencam"`` or a sequence of ids -> those methods, in order,
    each once. Unknown ids raise a VidcamError listing the valid ones.
    """
    if spec is True or (isinstance(spec, str) and not spec.strip()):
        return None
    if spec is False or spec is None:
        return ()
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    ids = [str(i).strip() for i in items if str(i).strip()]
    if not ids:
        raise VidcamError(f"--side-by-side {spec!r}: give method ids, e.g. gradcam,layercam")
    found = []
    for i in ids:
        m = METHODS.get(i.lower())
        if m is None:
            raise VidcamError(f"--side-by-side: method {i!r} is not one of {', '.join(METHODS)}")
        if m not in found:
            found.append(m)
    return tuple(found)


def panel_ids(spec: bool | str | Sequence[str] | None) -> bool | tuple[str, ...]:
    """``--side-by-side``'s value checked at once: a bool as is, a list -> its method ids."""
    panels = parse_panels(spec)
    if panels is None:
        return True
    return tuple(p.id for p in panels) if panels else False


def panels_for(
    method: str | Method, side_by_side: bool | str | Sequence[str] | None
) -> tuple[Method, ...]:
    """The panels shown for ``method`` with ``side_by_side`` (see :func:`parse_panels`): the
    method alone, its default pair, or the listed methods."""
    m = get_method(method)
    panels = parse_panels(side_by_side)
    if panels is None:
        return m.side_by_side()
    return panels or (m,)
