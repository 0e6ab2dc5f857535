"""Errors a person can act on.

Every error kqa raises on purpose derives from :class:`KqaError`; front ends print its message
(never a traceback) and exit non-zero. :class:`LoadError` carries the file, line and field so a
bad input file is pointed at precisely.
"""

from __future__ import annotations

from pathlib import Path


class KqaError(Exception):
    """An error whose message is meant for the person using kqa."""


class NotFoundError(KqaError):
    """A named thing (KG, entity, model, plugin) does not exist."""


class LoadError(KqaError):
    """A knowledge-graph file could not be loaded; nothing was written.

    ``line`` is 1-based (0 when the problem is the file as a whole); for parsers that report
    a character position instead (RDF), the position is part of ``reason``.
    """

    def __init__(self, path: str | Path, line: int, field: str | None, reason: str) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.reason = reason
        where = f"{self.path}:{line}" if line else self.path
        what = f" [{field}]" if field else ""
        super().__init__(f"{where}{what}: {reason}")


class ModelMismatchError(KqaError):
    """A trained model is used with a KG or encoder it was not trained for."""


class ImageError(KqaError):
    """An image input is missing, corrupt, not an image, or too large to decode safely."""
