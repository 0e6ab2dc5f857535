"""Pure helpers for the Streamlit web UI (``app.py``): no Streamlit import, no business logic.

Everything here turns what :mod:`kqa.api` returns into something a page can show — Graphviz
DOT for a neighbourhood or an answer's evidence, rows for tables, readable error messages —
so it can be unit-tested without a browser. The real work (loading, browsing, answering)
stays in :mod:`kqa.api`, shared with the CLI.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kqa.errors import KqaError

DEFAULT_KG = "countries"
MAX_NEIGHBOURHOOD_EDGES = 40
MAX_EVIDENCE_EDGES = 60
MAX_LABEL = 40

# -- knowledge graphs ---------------------------------------------------------------------------


def default_kg(names: Sequence[str], preferred: str = DEFAULT_KG) -> str | None:
    """The KG a select box starts on: ``countries`` when loaded, else the first one."""
    if preferred in names:
        return preferred
    return names[0] if names else None


def accepted_extensions(loaders: Mapping[str, Any]) -> list[str]:
    """Every extension a registered loader claims (``.tsv``, ``.ttl``…), sorted, for
    ``st.file_uploader(type=...)``."""
    return sorted({ext.lower() if ext.startswith(".") else "." + ext.lower()
                   for loader in loaders.values() for ext in getattr(loader, "extensions", ())})


def save_upload(filename: str, data: bytes, folder: str | Path) -> Path:
    """Write an uploaded file into ``folder`` under its original base name (the extension
    picks the loader, the stem the default KG name)."""
    name = Path(str(filename).replace("\\", "/")).name.strip() or "upload"
    path = Path(folder) / name
    path.write_bytes(data)
    return path


def load_progress(stage: str, done: int, total: int) -> tuple[float, str]:
    """A progress-bar value in [0, 1] and its caption for the core's progress callback."""
    fraction = 1.0 if total <= 0 else max(0.0, min(1.0, done / total))
    text = f"{stage}: {done:,} / {total:,}" if total > 1 else f"{stage}…"
    return fraction, text


def summary_text(summary: Any) -> str:
    """One line saying what a load did (a :class:`kqa.store.LoadSummary`)."""
    parts = [f"{summary.triples_added:,} triples", f"{summary.entities_added:,} entities",
             f"{summary.relations_added:,} relations", f"{summary.literals_added:,} literals"]
    if summary.images_added:
        parts.append(f"{summary.images_added:,} images")
    text = (f"Loaded {', '.join(parts)} into KG '{summary.kg}' ({summary.mode}) "
            f"in {summary.seconds:.1f} s; now at version {summary.version}.")
    if summary.duplicates_skipped:
        text += f" {summary.duplicates_skipped:,} duplicate triples skipped."
    return text


def summary_rows(summary: Any) -> list[dict[str, Any]]:
    """A load summary as (what, count) rows."""
    fields = [("triples added", summary.triples_added),
              ("entities added", summary.entities_added),
              ("relations added", summary.relations_added),
              ("literals added", summary.literals_added),
              ("images added", summary.images_added),
              ("duplicates skipped", summary.duplicates_skipped), ("version", summary.version)]
    return [{"what": what, "count": count} for what, count in fields]


def clean_message(message: str, temp_folder: str | Path | None) -> str:
    """An error message with the temporary upload folder taken out, so it names the file
    the person uploaded (``bad.tsv:3 [object]: …``)."""
    if not temp_folder:
        return message
    folder = str(temp_folder).rstrip("/\\")
    for prefix in (folder + "/", folder + "\\", str(Path(folder).resolve()) + "/"):
        message = message.replace(prefix, "")
    return message


# -- browsing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntityHit:
    """One search result: a node of the graph view."""

    node: int
    name: str
    key: str
    type: str | None
    kind: str  # "entity" or "literal"
    score: float

    @property
    def label(self) -> str:
        extra = self.type or ("value" if self.kind == "literal" else "")
        return f"{self.name}  ({extra})" if extra else self.name

    @property
    def ref(self) -> str:
        """What :meth:`kqa.api.KG.show` finds this node by: the key for an entity, the value
        for a literal."""
        return self.key if self.kind == "entity" else self.name


def _hit(graph: Any, node: int, score: float) -> EntityHit:
    kind = "entity" if int(graph.node_kind[node]) == 0 else "literal"
    return EntityHit(node, graph.node_names[node], graph.node_keys[node], graph.node_types[node],
                     kind, float(score))


def search_entities(graph: Any, query: str, limit: int = 25,
                    min_score: float = 40.0) -> list[EntityHit]:
    """Fuzzy search over the graph view's node names (rapidfuzz), exact matches first; with
    an empty query, the best-connected entities."""
    query = (query or "").strip()
    if graph.num_nodes == 0:
        return []
    if not query:
        degree = graph.degree()
        order = sorted((i for i in range(graph.num_nodes) if int(graph.node_kind[i]) == 0),
                       key=lambda i: (-int(degree[i]), graph.node_names[i]))
        return [_hit(graph, i, 0.0) for i in order[:limit]]
    from rapidfuzz import fuzz, process, utils

    found = process.extract(query, graph.node_names, scorer=fuzz.WRatio,
                            processor=utils.default_process, limit=limit * 2,
                            score_cutoff=min_score)
    folded = query.casefold()
    exact = [i for i, name in enumerate(graph.node_names) if name.casefold() == folded
             or graph.node_keys[i] == query]
    ranked: dict[int, float] = {i: 100.0 for i in exact}
    for _name, score, index in found:
        ranked.setdefault(int(index), float(score))
    order = sorted(ranked, key=lambda i: (i not in exact, -ranked[i], graph.node_names[i]))
    return [_hit(graph, i, ranked[i]) for i in order[:limit]]


def facts_rows(entity: Mapping[str, Any]) -> list[dict[str, str]]:
    """The facts of :meth:`kqa.api.KG.show` as table rows."""
    return [{"subject": f["subject"], "relation": f.get("relation_name") or f["relation"],
             "object": f["object"]} for f in entity.get("facts", [])]


# -- Graphviz DOT -------------------------------------------------------------------------------


def _short(text: Any, limit: int = MAX_LABEL) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def dot_quote(text: Any) -> str:
    """A DOT double-quoted string."""
    escaped = str(text).replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\r", " ").replace("\n", "\\n")
    return f'"{escaped}"'


_GRAPH_HEAD = [
    "  rankdir=LR;",
    '  graph [fontname="Helvetica", fontsize=10, pad=0.2, nodesep=0.25, ranksep=0.6];',
    ('  node [shape=box, style="rounded,filled", fillcolor="#f4f6f8", color="#9aa5b1", '
     'fontname="Helvetica", fontsize=10];'),
    '  edge [color="#7b8794", fontcolor="#52606d", fontname="Helvetica", fontsize=9];',
]


class _Dot:
    def __init__(self, name: str) -> None:
        self.name = name
        self.nodes: dict[str, str] = {}  # label → attributes
        self.edges: dict[tuple[str, str, str], None] = {}

    def node(self, label: str, attrs: str = "") -> None:
        if label not in self.nodes or (attrs and not self.nodes[label]):
            self.nodes[label] = attrs

    def edge(self, subject: str, relation: str, obj: str) -> None:
        self.node(subject)
        self.node(obj)
        self.edges[(subject, relation, obj)] = None

    def source(self, extra: Iterable[str] = ()) -> str:
        lines = [f"digraph {dot_quote(self.name)} {{", *_GRAPH_HEAD]
        for label, attrs in self.nodes.items():
            node_attrs = f"label={dot_quote(_short(label))}, tooltip={dot_quote(label)}"
            lines.append(f"  {dot_quote(label)} [{node_attrs}{', ' + attrs if attrs else ''}];")
        for subject, relation, obj in self.edges:
            lines.append(f"  {dot_quote(subject)} -> {dot_quote(obj)} "
                         f"[label={dot_quote(_short(relation, 30))}];")
        lines.extend(extra)
        lines.append("}")
        return "\n".join(lines)


CENTRE = 'fillcolor="#ffd166", color="#c99700", penwidth=1.5'
ANSWER = 'fillcolor="#ffd166", color="#c99700", penwidth=1.5'
TOPIC = 'fillcolor="#cfe8ff", color="#3d7cc9"'


def neighbourhood_dot(entity: Mapping[str, Any], max_edges: int = MAX_NEIGHBOURHOOD_EDGES) -> str:
    """DOT for an entity's facts (from :meth:`kqa.api.KG.show`), at most ``max_edges`` edges;
    the entity is highlighted and a note counts the facts left out."""
    centre = str(entity["name"])
    dot = _Dot(f"neighbourhood of {centre}")
    dot.node(centre, CENTRE)
    facts = list(entity.get("facts", []))
    for fact in facts[:max_edges]:
        dot.edge(str(fact["subject"]), str(fact.get("relation_name") or fact["relation"]),
                 str(fact["object"]))
    extra = []
    hidden = max(len(facts) - max_edges, 0) + max(int(entity.get("degree", 0)) - len(facts), 0)
    if hidden:
        extra.append(f'  "__more__" [label="+{hidden} more facts", shape=plaintext, '
                     f'style="", fontcolor="#7b8794"];')
        extra.append(f'  {dot_quote(centre)} -> "__more__" [style=dotted, arrowhead=none];')
    return dot.source(extra)


def _field(item: Any, name: str, default: Any = None) -> Any:
    if isinstance(item, Mapping):
        return item.get(name, default)
    return getattr(item, name, default)


def _triple(step: Any) -> tuple[str, str, str]:
    """A ``{subject, relation, object}`` dict, an object with those attributes, or a 3-tuple."""
    if isinstance(step, (tuple, list)) and len(step) == 3:
        return str(step[0]), str(step[1]), str(step[2])
    return (str(_field(step, "subject")), str(_field(step, "relation")),
            str(_field(step, "object")))


def evidence_paths(answer: Any) -> list[list[tuple[str, str, str]]]:
    """An answer's evidence as a list of paths of (subject, relation, object) triples."""
    paths = _field(answer, "evidence") or []
    out = []
    for path in paths:
        # a single triple given where a path was expected is a path of one step
        if isinstance(path, Mapping) or (hasattr(path, "subject") and hasattr(path, "object")):
            path = [path]
        out.append([_triple(step) for step in path])
    return out


def _path_start(path: list[tuple[str, str, str]], answer: str) -> str:
    """The node a path starts from: the end of its first step not shared with the second
    (for a one-step path, the end that is not the answer)."""
    first = path[0]
    if len(path) == 1:
        return first[2] if first[0] == answer else first[0]
    second = path[1]
    return first[2] if first[0] in (second[0], second[2]) else first[0]


def evidence_dot(result: Any, max_edges: int = MAX_EVIDENCE_EDGES, max_answers: int = 5) -> str:
    """DOT for the evidence subgraph of an :class:`kqa.answer.AnswerResult`: the union of the
    top answers' evidence paths, answers highlighted, entities the paths start from (the
    question's topic entities, usually) shaded, at most ``max_edges`` edges."""
    dot = _Dot("evidence")
    answers = list(_field(result, "answers") or [])[:max_answers]
    names = {str(_field(a, "name")) for a in answers}
    starts: set[str] = set()
    for answer in answers:
        for path in evidence_paths(answer):
            if path:
                starts.add(_path_start(path, str(_field(answer, "name"))))
            for subject, relation, obj in path:
                if len(dot.edges) < max_edges:
                    dot.edge(subject, relation, obj)
    for name in names:
        dot.nodes[name] = ANSWER
    for start in starts - names:
        if start in dot.nodes:
            dot.nodes[start] = TOPIC
    extra = []
    left_out = len({t for a in answers for p in evidence_paths(a) for t in p}) - len(dot.edges)
    if left_out > 0:
        extra.append(f'  "__more__" [label="+{left_out} more evidence triples", shape=plaintext, '
                     f'style="", fontcolor="#7b8794"];')
    return dot.source(extra)


def evidence_rows(result: Any, max_answers: int = 5) -> list[dict[str, Any]]:
    """The evidence triples listed under the picture: one row per step of each path."""
    rows = []
    for answer in list(_field(result, "answers") or [])[:max_answers]:
        for p, path in enumerate(evidence_paths(answer), start=1):
            for subject, relation, obj in path:
                rows.append({"answer": str(_field(answer, "name")), "path": p,
                             "subject": subject, "relation": relation, "object": obj})
    return rows


def answer_rows(result: Any) -> list[dict[str, Any]]:
    """Ranked answers with their scores."""
    rows = []
    for rank, answer in enumerate(_field(result, "answers") or [], start=1):
        score = _field(answer, "score")
        row = {"rank": rank, "answer": str(_field(answer, "name")),
               "score": round(float(score), 4) if score is not None else None}
        hops = _field(answer, "hop", _field(answer, "hops"))
        if hops is not None:
            row["hops"] = hops
        row["evidence paths"] = len(_field(answer, "evidence") or [])
        rows.append(row)
    return rows


ALL_ANSWERS = "all answers"


def modality_rows(result: Any, max_answers: int = 5) -> list[dict[str, Any]]:
    """Long-form (answer, modality, share) rows for a stacked bar chart of how much each
    modality (text, graph, image…) contributed: per answer when the answers carry
    ``modalities``, else one bar (``all answers``) from the result's own ``modalities``."""
    rows = []
    for answer in list(_field(result, "answers") or [])[:max_answers]:
        for modality, share in (_field(answer, "modalities") or {}).items():
            rows.append({"answer": str(_field(answer, "name")), "modality": str(modality),
                         "share": float(share)})
    if not rows:
        for modality, share in (_field(result, "modalities") or {}).items():
            rows.append({"answer": ALL_ANSWERS, "modality": str(modality), "share": float(share)})
    return rows


def history_entry(kg: str, question: str, result: Any, model: str | None = None,
                  image_name: str | None = None) -> dict[str, Any]:
    """What the Ask page keeps in ``st.session_state`` for one question."""
    answers = list(_field(result, "answers") or [])
    confidence = _field(result, "confidence")
    return {"kg": kg, "question": question, "model": model, "image": image_name,
            "top answer": str(_field(answers[0], "name")) if answers else "",
            "confidence": round(float(confidence), 3) if confidence is not None else None,
            "result": result}


# -- plugins and models -------------------------------------------------------------------------


def plugin_rows(infos: Iterable[Any]) -> list[dict[str, Any]]:
    """One row per :class:`kqa.plugins.PluginInfo`."""
    rows = []
    for info in infos:
        rows.append({
            "plugin": info.name, "version": info.version or "",
            "distribution": info.distribution or "",
            "module": info.module, "hooks": ", ".join(info.hooks),
            "loaders": ", ".join(info.adds.get("loaders", [])),
            "encoders": ", ".join(info.adds.get("encoders", [])),
            "fusions": ", ".join(info.adds.get("fusions", [])),
            "status": "failed" if info.errors else "ok",
        })
    return rows


def loader_rows(loaders: Mapping[str, Any]) -> list[dict[str, str]]:
    """Format → extensions, for the "what can I upload" table."""
    return [{"format": name, "extensions": " ".join(getattr(loader, "extensions", ()))}
            for name, loader in sorted(loaders.items())]


MODEL_COLUMNS = ("name", "kg", "encoder", "text_encoder", "image_encoder", "fusion", "created",
                 "path")


def model_rows(models: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Trained models (``kqa.api.list_models()``) as rows: the usual columns first, in order,
    then whatever else a model's record carries (nested values as text)."""
    rows = []
    for model in models:
        model = dict(model) if isinstance(model, Mapping) else dict(vars(model))
        row = {c: model.pop(c) for c in MODEL_COLUMNS if c in model}
        row.update(model)
        rows.append({k: v if isinstance(v, (str, int, float, bool, type(None))) else str(v)
                     for k, v in row.items()})
    return rows


def model_choice(model: Mapping[str, Any]) -> tuple[str | None, str]:
    """(value passed as ``model=`` to :func:`kqa.api.ask`, label) for one model record."""
    path = model.get("path")
    label = str(model.get("name") or (Path(str(path)).name if path else "model"))
    details = [str(model[k]) for k in ("encoder", "fusion") if model.get(k)]
    if details:
        label += f" ({', '.join(details)})"
    return (str(path) if path else model.get("name")), label


# -- errors -------------------------------------------------------------------------------------


def describe_error(exc: BaseException) -> tuple[str, str | None]:
    """(message for the person, details or None): a :class:`KqaError` is its message; any
    other error a short line plus its traceback, for an expander."""
    if isinstance(exc, KqaError):
        return str(exc), None
    detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    message = f"Something went wrong: {type(exc).__name__}" + (f": {text}" if text else "")
    return message, detail
