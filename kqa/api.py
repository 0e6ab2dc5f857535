"""The documented Python API: the third front end, and what the CLI and the web UI call.

    import kqa
    kqa.load_kg("kb.txt", "movies")           # file or pack folder → the store
    kg = kqa.open_kg("movies")
    kg.show("Blade Runner")                    # entity, facts, neighbours
    kqa.list_kgs()
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from kqa.graph import KGraph, load_graph
from kqa.load import parse_source, read_pack
from kqa.store import KGInfo, LoadSummary, Progress, Store, WriteMode


def load_kg(path: str | Path, name: str | None = None, fmt: str | None = None,
            mode: WriteMode = "create", progress: Progress | None = None,
            options: dict[str, Any] | None = None) -> LoadSummary:
    """Parse ``path`` (a file, or a pack folder with a manifest) and store it as KG ``name``.

    Parsing finishes before the single write transaction starts, so a bad file changes
    nothing. The graph view is built and cached right away so the first question is fast.
    """
    started = time.perf_counter()
    path = Path(path)
    description = None
    notes: list[str] = []
    if path.is_dir():
        pack = read_pack(path)
        name = name or pack.name
        description, notes = pack.description, pack.notes
    if not name:
        name = path.stem
    report = progress or (lambda *_: None)
    report("parsing", 0, 1)
    docs = parse_source(path, fmt, options)
    report("parsing", 1, 1)
    store = Store()
    summary = store.write(name, docs, mode=mode, description=description, progress=progress)
    summary.notes.extend(notes)
    report("graph", 0, 1)
    load_graph(name, store)
    report("graph", 1, 1)
    summary.seconds = time.perf_counter() - started
    return summary


def list_kgs() -> list[KGInfo]:
    """Every stored KG with its counts."""
    return Store().list()


def drop_kg(name: str) -> None:
    Store().drop(name)


class KG:
    """A stored knowledge graph, opened by name."""

    def __init__(self, name: str, store: Store | None = None) -> None:
        self.store = store or Store()
        self.name = name
        self.store.version(name)  # raises NotFoundError with the known names

    @property
    def graph(self) -> KGraph:
        return load_graph(self.name, self.store)

    def info(self) -> KGInfo:
        return self.store.info(self.name)

    def show(self, entity: str, limit: int = 200) -> dict[str, Any]:
        """An entity (or literal) with its facts, neighbours, images and provenance."""
        graph = self.graph
        node = graph.find(entity)
        facts = graph.facts(node, limit=limit)
        is_entity = graph.node_kind[node] == 0
        provenance = (self.store.provenance(self.name, int(graph.node_db_id[node]))[:limit]
                      if is_entity else [])
        return {
            "kg": self.name,
            "key": graph.node_keys[node],
            "name": graph.node_names[node],
            "type": graph.node_types[node],
            "kind": "entity" if is_entity else "literal",
            "aliases": graph.aliases[node],
            "images": graph.images.get(node, []),
            "facts": [{"subject": graph.label(f.subject), "relation": graph.relation_keys[f.relation],
                       "relation_name": graph.relation_names[f.relation],
                       "object": graph.label(f.object)} for f in facts],
            "neighbours": [graph.label(n) for n in graph.neighbours(node)[:limit]],
            "degree": int(graph.out_edges(node).size + graph.in_edges(node).size),
            "provenance": provenance,
        }


def mention_scorer(kg_name: str, model: str | Path | None = None) -> Any:
    """The learned mention tagger of a trained model for this KG, if there is one; ``None``
    means the heuristic scorer. An explicitly given model that cannot be used is an error."""
    from kqa.config import default_model_dir

    folder = Path(model) if model else default_model_dir(kg_name)
    if not (folder / "config.json").is_file():
        if model:
            from kqa.errors import NotFoundError

            raise NotFoundError(f"no trained model at {folder}")
        return None
    from kqa.answer import load_answerer

    return load_answerer(kg_name, folder).mention_scorer()


def open_kg(name: str) -> KG:
    """A stored KG by name (raises :class:`kqa.errors.NotFoundError` listing known names)."""
    return KG(name)


def as_dict(obj: Any) -> Any:
    return asdict(obj)


ProgressCallback = Callable[[str, int, int], None]
