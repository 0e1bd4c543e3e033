"""The report's template engine and link rules: Jinja2 with autoescape, percent-encoded links.

Every string from a file name, a label or a manifest reaches the page through a template
variable, so Jinja2 escapes it (``<script>`` shows as text). Data for the page's script goes
through ``tojson``, which escapes ``<``, ``>`` and ``&`` too, so it cannot close a ``<script>``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from urllib.parse import quote

import jinja2

from vidcam.errors import VidcamError

TEMPLATES = Path(__file__).resolve().parent / "templates"


def environment() -> jinja2.Environment:
    """The report's Jinja2 environment: templates from the package, autoescape on, strict."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(template: str, context: Mapping[str, object]) -> str:
    """Render ``templates/<template>`` with ``context``."""
    return environment().get_template(template).render(**context)


def quote_rel(rel: str) -> str:
    """A relative POSIX path as an href: every segment percent-encoded (spaces, ``#``, ``?``,
    ``%``, ``:``), so odd names resolve and no segment can act as a URL scheme."""
    return "/".join(quote(seg, safe="") for seg in rel.split("/"))


def link(page_dir: Path, target: str | Path) -> str:
    """A relative, percent-encoded href from a page in ``page_dir`` to the file ``target``."""
    rel = os.path.relpath(Path(target).resolve(), page_dir.resolve())
    return quote_rel(PurePosixPath(Path(rel)).as_posix())


def link_inside(rel: object) -> str | None:
    """The href of ``rel`` (a path relative to the page's folder, from a batch row), or None
    when it is not a relative path inside that folder (absolute, ``..``, a URL, empty)."""
    if not isinstance(rel, str) or not rel or "\\" in rel:
        return None
    p = PurePosixPath(rel)
    if p.is_absolute() or ".." in p.parts or ":" in p.parts[0]:
        return None
    return quote_rel(p.as_posix())


def existing_file(what: str, p: str | Path) -> Path:
    """``p`` as a Path when it is an existing regular file, else a VidcamError naming ``what``."""
    path = Path(p)
    if not path.is_file():
        raise VidcamError(f"{what} {str(path)!r} does not exist or is not a file; give its path")
    return path
