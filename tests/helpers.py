"""Small things several test modules share."""

from __future__ import annotations

from pathlib import Path

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


def assert_read_as_written(test_file: Path, prefix: str, word: str, typed: str) -> str:
    """Asks the films test question starting with ``prefix`` as written and with ``word``
    typed as ``typed``: the typed one must be read back as written and answered the same.
    Returns the question's line."""
    line = next(l for l in test_file.read_text().splitlines() if l.startswith(prefix))
    question = line.split("\t")[0].replace("[", "").replace("]", "")
    plain = kqa.ask("films", question)
    altered = kqa.ask("films", question.replace(word, typed))
    assert altered.question == question
    assert [a.name for a in altered.answers] == [a.name for a in plain.answers]
    return line
