"""User-facing errors.

Every problem caused by what the user passed in (arguments, files, models) raises
:class:`VidcamError`. The CLI prints its message as one line and exits non-zero.
"""

from __future__ import annotations


class VidcamError(ValueError):
    """A problem with the user's input; the message says what is wrong and what to do."""
