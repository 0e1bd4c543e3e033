"""THE table of explanation methods: one :class:`Method` row per method id, torch-free.

Everything that names methods is derived from :data:`METHODS`: the engine's dispatch
(:mod:`vidcam.cam.dispatch` calls the function a row names), the command line's ``--method``
choices (:mod:`vidcam.cli.choices`), ``vidcam evaluate``'s ``--methods`` choices and default
(:mod:`vidcam.evaluate.choices`), the report's colours and titles, and the panels of
``--side-by-side`` (:func:`panels_for`). Adding a method is one row here and one function in
:mod:`vidcam.cam.dispatch`. Panels, tables and JSON key by ``id``; titles are for display only.

This module imports no torch (``vidcam --help`` reads it), only :mod:`vidcam.errors`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

from vidcam.errors import VidcamError

#: a method id: a key of :data:`METHODS` ("gradcam++", "layercam", "guided-gradcam", ...)
MethodId: TypeAlias = str

#: kinds: what the engine must capture before the row's map function runs
GRADIENT = "gradient"  #: the layer's activations and the score's gradient there (one backward)
ACTIVATION_ONLY = "activation-only"  #: the layer's activations, no gradient (no autograd)
MASKED_SCORE = "masked-forward score"  #: the activations, then masked clips scored by class
INPUT_PERTURBATION = "input perturbation"  #: no layer: masked clips of the input, by class
KINDS: tuple[str, ...] = (GRADIENT, ACTIVATION_ONLY, MASKED_SCORE, INPUT_PERTURBATION)

#: cost classes, in words (the engine's ``Explanation.forwards`` counts them exactly)
ONE_BACKWARD = "one backward (shared by every gradient method of a call)"
FORWARD_ONLY = "the forward only"
MASKED_PER_CHANNEL = "a masked forward per channel"
MASKED_CLIPS = "masked forwards of the clip"
MASKED_CLIPS_BACKWARDS = "masked forwards and backwards of the clip"

#: the method used when none is named (``explain``, ``vidcam explain``)
DEFAULT_METHOD: MethodId = "gradcam++"


@dataclass(frozen=True)
class Method:
    """One row of the method table.

    ``id``: the key used everywhere ("guided-gradcam++"); ``title``: display name;
    ``kind``: one of :data:`KINDS`; ``function``: name of its map function in
    :mod:`vidcam.cam.dispatch` ("" for guided rows, which multiply their ``cam``'s map with
    guided backprop in the video pipeline); ``color``: its curves' colour in reports;
    ``cost``: what it costs beyond the forward; ``cam``: the engine method it runs (its own
    id unless guided); ``guided``: pixel-space product with guided backprop; ``pooled``:
    ``pooling`` applies; ``gradients``: the gradients it weights with ("positive" = relu(g),
    "all" = g; None: none); ``gradients_option``: ``gradients=`` may override that default;
    ``softmax``: has the Grad-CAM++ softmax variant; ``differentiable``: name of its in-graph
    weights function in :mod:`vidcam.cam.differentiable` ("" : not available there);
    ``slow``: never a default; ``pair_with``: the panel shown beside it by ``--side-by-side``
    without a list (guided rows: their ``cam``).
    """

    id: MethodId
    title: str
    kind: str
    function: str
    color: str
    cost: str
    cam: MethodId = ""
    guided: bool = False
    pooled: bool = False
    gradients: str | None = None
    gradients_option: bool = False
    softmax: bool = False
    differentiable: str = ""
    slow: bool = False
    pair_with: MethodId = DEFAULT_METHOD

    def __post_init__(self) -> None:
        if not self.cam:
            object.__setattr__(self, "cam", self.id)

    @property
    def base(self) -> Method:
        """The CAM this method is built on (itself when not guided)."""
        return METHODS[self.cam]

    @property
    def engine(self) -> bool:
        """Whether ``explain``/``Explainer`` computes it (guided rows: the video pipeline)."""
        return not self.guided

    @property
    def needs_layer(self) -> bool:
        """Whether it explains a layer (False: it perturbs the input)."""
        return self.kind != INPUT_PERTURBATION

    @property
    def needs_gradient(self) -> bool:
        """Whether the engine must backpropagate the score to the layer for it."""
        return self.kind == GRADIENT

    @property
    def scores_masked_clips(self) -> bool:
        """Whether it scores masked clips by class (a callable target can not be used)."""
        return self.kind in (MASKED_SCORE, INPUT_PERTURBATION)

    def side_by_side(self) -> tuple[Method, ...]:
        """The panels of ``--side-by-side`` without a list: this row and ``pair_with`` (guided
        rows: their CAM), in table order."""
        other = METHODS[self.cam if self.guided else self.pair_with]
        if other.id == self.id:
            return (self,)
        order = list(METHODS)
        return tuple(sorted((self, other), key=lambda m: order.index(m.id)))


METHODS: dict[MethodId, Method] = {
    m.id: m
    for m in (
        Method("gradcam", "Grad-CAM", GRADIENT, "gradcam_map", "#1f77b4", ONE_BACKWARD,
               pooled=True, gradients="all", gradients_option=True,
               differentiable="gradcam_weights"),
        Method("gradcam++", "Grad-CAM++", GRADIENT, "gradcampp_map", "#d62728", ONE_BACKWARD,
               pooled=True, gradients="positive", gradients_option=True, softmax=True,
               differentiable="gradcampp_weights_smooth", pair_with="gradcam"),
        Method("guided-gradcam", "Guided Grad-CAM", GRADIENT, "", "#aec7e8", ONE_BACKWARD,
               cam="gradcam", guided=True),
        Method("guided-gradcam++", "Guided Grad-CAM++", GRADIENT, "", "#ff9896", ONE_BACKWARD,
               cam="gradcam++", guided=True),
        Method("xgradcam", "XGrad-CAM", GRADIENT, "xgradcam_map", "#9467bd", ONE_BACKWARD,
               pooled=True, gradients="all", gradients_option=True),
        Method("layercam", "LayerCAM", GRADIENT, "elementwise_cam", "#ff7f0e", ONE_BACKWARD,
               gradients="positive"),
        Method("hirescam", "HiResCAM", GRADIENT, "elementwise_cam", "#8c564b", ONE_BACKWARD,
               gradients="all"),
        Method("eigencam", "Eigen-CAM", ACTIVATION_ONLY, "eigencam_map", "#e377c2",
               FORWARD_ONLY),
        Method("scorecam", "Score-CAM", MASKED_SCORE, "scorecam_map", "#17becf",
               MASKED_PER_CHANNEL, slow=True),
        Method("rise", "RISE", INPUT_PERTURBATION, "rise_map", "#393b79", MASKED_CLIPS,
               slow=True),
        Method("extremal", "Extremal perturbation", INPUT_PERTURBATION, "extremal_map",
               "#637939", MASKED_CLIPS_BACKWARDS, slow=True),
    )
}  # fmt: skip


def method_ids(**where: object) -> tuple[MethodId, ...]:
    """The ids of the rows whose attributes equal ``where`` (e.g. ``guided=False``), in table
    order; read at call time, so a row added to :data:`METHODS` is seen at once."""
    return tuple(
        m.id for m in METHODS.values() if all(getattr(m, k) == v for k, v in where.items())
    )


#: every method id, in the order help and tables list them (``vidcam explain --method``)
METHOD_IDS: tuple[MethodId, ...] = method_ids()
#: the engine's methods (``explain``; ``vidcam evaluate --methods``)
ENGINE_METHODS: tuple[MethodId, ...] = method_ids(engine=True)
#: engine methods computed from the gradient at the layer (one shared backward)
GRADIENT_METHODS: tuple[MethodId, ...] = method_ids(engine=True, kind=GRADIENT)
#: engine methods at a layer that need no gradient (run without autograd)
GRADIENT_FREE_METHODS: tuple[MethodId, ...] = tuple(
    m for m in ENGINE_METHODS if METHODS[m].needs_layer and not METHODS[m].needs_gradient
)
#: input-space perturbation methods (masked clips, no layer)
PERTURBATION_METHODS: tuple[MethodId, ...] = method_ids(engine=True, kind=INPUT_PERTURBATION)
#: methods whose weights pool over the volume or per frame (``pooling`` applies)
POOLED_METHODS: tuple[MethodId, ...] = method_ids(engine=True, pooled=True)
#: default of ``gradients`` per method that takes the option
DEFAULT_GRADIENTS: dict[MethodId, str] = {
    m.id: str(m.gradients) for m in METHODS.values() if m.engine and m.gradients_option
}
#: engine methods that are not cheap (many forwards): never a default
SLOW_METHODS: tuple[MethodId, ...] = method_ids(engine=True, slow=True)
#: engine methods that are cheap: ``vidcam evaluate``'s default
CHEAP_METHODS: tuple[MethodId, ...] = method_ids(engine=True, slow=False)
#: methods :func:`vidcam.cam.differentiable.differentiable_cam` computes
DIFFERENTIABLE_METHODS: tuple[MethodId, ...] = tuple(
    m.id for m in METHODS.values() if m.differentiable
)


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
