"""The explanation methods as values: one :class:`Method` per id, parsed once.

A method id names what the engine computes (``cam``: "gradcam" | "gradcam++"), whether the
CAM is multiplied with guided backprop (``guided``), and the display ``title``. Panels,
tables and JSON key by ``id``; titles are only for rendering.
"""

from __future__ import annotations

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
        """The panels of ``--side-by-side``: the CAM next to its guided product, or
        Grad-CAM next to Grad-CAM++."""
        if self.guided:
            return (self.base, self)
        return (METHODS["gradcam"], METHODS["gradcam++"])


METHODS: dict[str, Method] = {
    m.id: m
    for m in (
        Method("gradcam", "gradcam", False, "Grad-CAM"),
        Method("gradcam++", "gradcam++", False, "Grad-CAM++"),
        Method("guided-gradcam", "gradcam", True, "Guided Grad-CAM"),
        Method("guided-gradcam++", "gradcam++", True, "Guided Grad-CAM++"),
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
