"""Small things several test modules share."""

from __future__ import annotations

import kqa
from kqa.errors import LoadError


class Throwaway:
    """A plugin object registered directly on the manager, then unregistered."""

    class Loader:
        name = "throwaway"
        extensions = (".throw",)

        def parse(self, path, options):  # type: ignore[no-untyped-def]
            raise LoadError(path, 7, "subject", "thrown away")

    @kqa.hookimpl
    def register_loaders(self, register):  # type: ignore[no-untyped-def]
        register(self.Loader())
