"""The hooks a kqa plugin can implement.

Each hook takes a ``register`` callback (the simonw/llm pattern): a plugin calls it once per
thing it adds, so one plugin can add several loaders or encoders and kqa knows which plugin
added what. Plugins are found through the ``kqa`` entry-point group; the built-in ones in
``plugins/`` are registered that same way (see ``pyproject.toml``).

A plugin module looks like::

    from kqa import hookimpl

    @hookimpl
    def register_loaders(register):
        register(MyFormatLoader())
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import pluggy

if TYPE_CHECKING:  # pragma: no cover - typing only
    import typer

    from kqa.encode import EncoderSpec
    from kqa.fuse import FusionSpec
    from kqa.load import Loader

hookspec = pluggy.HookspecMarker("kqa")
hookimpl = pluggy.HookimplMarker("kqa")


@hookspec
def register_loaders(register: Callable[[Loader], None]) -> None:
    """Add knowledge-graph format loaders.

    Call ``register(loader)`` with an object that follows :class:`kqa.load.Loader`: a ``name``
    (what ``--format`` takes), the file ``extensions`` it claims, and ``parse(path, options)``
    returning a :class:`kqa.load.KGDocument` or raising :class:`kqa.errors.LoadError`.
    """


@hookspec
def register_encoders(register: Callable[[EncoderSpec], None]) -> None:
    """Add modality encoders (text, image or a new modality).

    Call ``register(EncoderSpec(name=..., modality=..., factory=...))``. The factory builds the
    :class:`kqa.encode.Encoder` lazily, once per process, on first use, so listing plugins
    never loads model weights.
    """


@hookspec
def register_fusions(register: Callable[[FusionSpec], None]) -> None:
    """Add fusion strategies for the answer model.

    Call ``register(FusionSpec(name=..., factory=...))``; ``factory(dims, hidden)`` returns a
    :class:`kqa.fuse.Fusion` module that turns per-modality vectors into one question
    representation plus each modality's share. ``kqa train --fusion NAME`` selects one.
    """


@hookspec
def register_commands(cli: typer.Typer) -> None:
    """Add sub-commands to the ``kqa`` command line (``@cli.command()``)."""
