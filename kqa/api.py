"""The documented Python API: the third front end, and what the CLI and the web UI call.

    import kqa
    kqa.load_kg("kb.txt", "movies")                      # a file or a pack folder → the store
    kg = kqa.open_kg("movies")
    kg.show("Blade Runner")                               # an entity, its facts, neighbours
    kqa.build_index("movies")                             # FAISS indexes of names, relations, images
    kqa.link_entities("movies", "who directed blade runner")       # candidate topic entities
    kqa.train("movies", ["1-hop/qa_dev.txt", "2-hop/qa_dev.txt"])   # → $KQA_HOME/models/movies
    kqa.ask("movies", "what genres are the films directed by ridley scott")
    kqa.evaluate("movies", ["held_out.txt"])              # Hits@1, MRR, per file
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
    description = meta = None
    notes: list[str] = []
    if path.is_dir():
        pack = read_pack(path)
        name = name or pack.name
        description, notes, meta = pack.description, pack.notes, pack.meta
    if not name:
        name = path.stem
    report = progress or (lambda *_: None)
    report("parsing", 0, 1)
    docs = parse_source(path, fmt, options)
    report("parsing", 1, 1)
    store = Store()
    summary = store.write(name, docs, mode=mode, description=description, progress=progress, meta=meta)
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


def build_index(kg_name: str, text_encoder: str | None = None, image_encoder: str | None = None,
                index_type: str = "auto", image_views: int | None = None, force: bool = False,
                progress: Progress | None = None, kinds: tuple[str, ...] | None = None) -> list[Any]:
    """Build (or bring up to date) the KG's entity, relation and image indexes (or ``kinds``).
    ``image_views`` augmented views per entity image (default: what the stored index has, or 3)."""
    from kqa.index import KINDS, build_indexes

    KG(kg_name)
    return build_indexes(kg_name, text_encoder, image_encoder, index_type, image_views, progress, force,
                         kinds or KINDS)


def link_entities(kg_name: str, question: str, image: Any = None, model: str | Path | None = None,
                  top_k: int = 5) -> Any:
    """Topic-entity candidates for a question (and an image), best first."""
    from kqa.link import get_linker

    linker = get_linker(KG(kg_name).name)
    result = linker.link(question, top_k, mention_scorer(kg_name, model))
    if image is not None:
        result.image_candidates = image_candidates(kg_name, image, model, top_k)
    return result


def image_candidates(kg_name: str, image: Any, model: str | Path | None = None, top_k: int = 5) -> list[Any]:
    """Entities shown in an image: by a trained model's image matching when the KG has a
    model with images, else by nearest neighbours in the image index."""
    from kqa.answer import load_answerer
    from kqa.images import open_image
    from kqa.link import get_linker

    picture = open_image(image)
    folder = resolve_model(kg_name, model)
    if (folder / "config.json").is_file():
        found = load_answerer(kg_name, folder).image_candidates(picture, top_k)
        if found:
            return found
    return get_linker(kg_name).link_image(picture, top_k)


def resolve_model(kg_name: str, model: str | Path | None) -> Path:
    from kqa.config import default_model_dir

    return Path(model) if model else default_model_dir(kg_name)


def ask(kg_name: str, question: str, image: Any = None, model: str | Path | None = None,
        top_k: int = 5) -> Any:
    """Ranked answers with evidence and confidence (:class:`kqa.answer.AnswerResult`).
    ``image`` may be a path, raw bytes or a PIL image."""
    from kqa.answer import load_answerer

    return load_answerer(KG(kg_name).name, resolve_model(kg_name, model)).ask(question, image, top_k)


def train(kg_name: str, questions: list[str | Path] = (), out: str | Path | None = None,  # type: ignore[assignment]
          fusion: str = "gated", init: str | Path | None = None, generated: bool = False,
          progress: Progress | None = None, log: Callable[[dict[str, Any]], None] | None = None,
          **options: Any) -> Any:
    """Train a model on question files (and/or questions generated from the KG); returns a
    :class:`kqa.answer.TrainReport`. ``options`` are :class:`kqa.training.TrainConfig` fields
    (epochs, lr, lam, seed, ...) plus ``text_encoder``, ``image_encoder``, ``hidden``,
    ``max_hops``, ``generate`` (:class:`kqa.generate.GenerateConfig` fields), ``recognise``
    (:class:`kqa.recognise.RecogniseConfig` fields, or False: no image recogniser) and
    ``recogniser_from`` (a model folder whose trained recogniser is reused)."""
    from kqa.answer import read_question_files, train_model
    from kqa.training import TrainConfig

    KG(kg_name)
    model_keys = {"text_encoder", "image_encoder", "hidden", "max_hops", "recognise", "recogniser_from"}
    model_options = {k: options.pop(k) for k in list(options) if k in model_keys}
    generate_options = options.pop("generate", None) or {}
    config = TrainConfig(**options)
    qs = read_question_files(list(questions))
    extra = []
    if generated:
        from kqa.generate import GenerateConfig, generated_examples

        extra = generated_examples(kg_name, GenerateConfig(seed=config.seed, **generate_options))
    if not qs and not extra:
        from kqa.errors import KqaError

        raise KqaError("nothing to train on: give question files, or --generated for a KG with "
                       "entity images or relation names to make questions from")
    return train_model(kg_name, qs, resolve_model(kg_name, out), fusion=fusion,
                       init=Path(init) if init else None, config=config, progress=progress, log=log,
                       extra_examples=extra, **model_options)


def evaluate(kg_name: str, questions: list[str | Path], model: str | Path | None = None,
             gold_topics: bool = True, progress: Progress | None = None) -> Any:
    """Hits@1 and MRR overall and per file (:class:`kqa.training.EvalResult`). With
    ``gold_topics`` the ``[bracketed]`` entities are given; without, they are linked."""
    from kqa.answer import evaluate_model, read_question_files

    return evaluate_model(KG(kg_name).name, resolve_model(kg_name, model),
                          read_question_files(list(questions)), gold_topics, progress)


def list_models() -> list[dict[str, Any]]:
    """Models under ``$KQA_HOME/models``: KG, encoders, fusion, metrics."""
    import json

    from kqa.config import models_dir

    rows = []
    for config in sorted(models_dir().glob("*/config.json")):
        try:
            meta = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        encoders = meta.get("encoders", {})
        rows.append({
            "name": config.parent.name, "path": str(config.parent), "kg": meta["kg"]["name"],
            "fusion": meta["model"]["fusion"],
            "text_encoder": encoders.get("text", {}).get("name"),
            "image_encoder": (encoders.get("image") or {}).get("name"),
            "metrics": meta.get("metrics", {}), "created": meta.get("created"),
            "examples": meta.get("data", {}).get("examples"),
        })
    return rows


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
