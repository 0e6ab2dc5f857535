"""Pure helpers for the Streamlit web UI (``app.py``): no Streamlit import, no business logic.

Everything here turns what :mod:`kqa.api` returns into something a page can show — Graphviz
DOT for a neighbourhood or an answer's evidence, rows for tables, readable error messages —
so it can be unit-tested without a browser. The real work (loading, browsing, answering)
stays in :mod:`kqa.api`, shared with the CLI.
"""

from __future__ import annotations

import re
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

    def source(self, extra: Iterable[str] = (),
               colours: Mapping[tuple[str, str, str], str] | None = None,
               backward: Iterable[tuple[str, str, str]] = ()) -> str:
        """The DOT text; ``colours`` per edge, and ``backward`` edges (facts a path walked
        from object to subject) laid out the way the path went, arrow still at the object."""
        lines = [f"digraph {dot_quote(self.name)} {{", *_GRAPH_HEAD]
        for label, attrs in self.nodes.items():
            node_attrs = f"label={dot_quote(_short(label))}, tooltip={dot_quote(label)}"
            lines.append(f"  {dot_quote(label)} [{node_attrs}{', ' + attrs if attrs else ''}];")
        back = set(backward)
        for subject, relation, obj in self.edges:
            colour = (colours or {}).get((subject, relation, obj))
            style = (f", color={dot_quote(colour)}, fontcolor={dot_quote(colour)}, penwidth=1.6"
                     if colour else "")
            tail, head = (obj, subject) if (subject, relation, obj) in back else (subject, obj)
            if tail != subject:
                style += ", dir=back"
            lines.append(f"  {dot_quote(tail)} -> {dot_quote(head)} "
                         f"[label={dot_quote(_short(relation, 30))}{style}];")
        lines.extend(extra)
        lines.append("}")
        return "\n".join(lines)


CENTRE = 'fillcolor="#ffd166", color="#c99700", penwidth=1.5'
ANSWER = 'fillcolor="#ffd166", color="#c99700", penwidth=1.5'
TOPIC = 'fillcolor="#cfe8ff", color="#3d7cc9"'
ANSWER_TOPIC = 'fillcolor="#ffd166", color="#3d7cc9", penwidth=2.5'  # an answer that is a topic


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


def answer_hop(answer: Any) -> int | None:
    """How many hops an answer is from the topic (``Answer.hop``; ``hops`` in dicts)."""
    hop = _field(answer, "hop", _field(answer, "hops"))
    return int(hop) if hop is not None else None


def image_was_used(result: Any) -> bool:
    """Whether the question came with an image: the image modality has a share. (The model
    reports image-topic candidates even without an image; they mean nothing then.)"""
    return float((_field(result, "modalities") or {}).get("image", 0.0) or 0.0) > 0.0


def text_topics(result: Any, keep: int = 3) -> list[dict[str, Any]]:
    """The topic entities linked from the question's words that the model used: the best
    few, those scoring at least half the best (as :func:`kqa.training.topic_from_candidates`)."""
    topics = [t for t in list(_field(result, "topic") or [])[:keep]
              if float(_field(t, "score", 0.0) or 0.0) > 0]
    if not topics:
        return []
    best = float(_field(topics[0], "score"))
    return [t for t in topics if float(_field(t, "score")) >= 0.5 * best]


def image_topics(result: Any, image: bool | None = None) -> list[dict[str, Any]]:
    """Entities the image was matched to (empty when no image was given)."""
    if not (image_was_used(result) if image is None else image):
        return []
    return list(_field(result, "image_topic") or [])


HOP_COLOURS = ("#3d7cc9", "#8e44ad", "#d35400", "#2f855a")  # step 1, 2, 3, 4 of a path
QUESTION = 'shape=ellipse, style="filled", fillcolor="#ffffff", color="#52606d", fontcolor="#52606d"'
QUESTION_NODE = "__question__"
IMAGE_NODE = "__image__"


def hop_colour(step: int) -> str:
    """Edge colour of the ``step``-th hop (1-based) of an evidence path."""
    return HOP_COLOURS[(max(step, 1) - 1) % len(HOP_COLOURS)]


def _pct(value: Any) -> str:
    return f"{float(value):.0%}"


def evidence_dot(result: Any, max_edges: int = MAX_EVIDENCE_EDGES, max_answers: int = 5,
                 image: bool | None = None) -> str:
    """DOT for the evidence of an :class:`kqa.answer.AnswerResult`: where the topic came from
    (the question's words, the image) → the topic entities → the paths the model followed →
    the answers. Each edge of a path is coloured by its hop (:data:`HOP_COLOURS`), answers are
    highlighted with their hop count, topic entities shaded; at most ``max_edges`` path edges.

    An answer with hop 0 is a topic entity itself (its evidence is ``[[]]``): it is shown
    joined to the question or image it was recognised in. ``image`` says whether an image was
    given (default: the result's image share is above zero)."""
    dot = _Dot("evidence")
    answers = list(_field(result, "answers") or [])[:max_answers]
    names = [str(_field(a, "name")) for a in answers]
    starts: set[str] = set()
    steps: dict[tuple[str, str, str], int] = {}  # triple → the earliest hop it is used at
    backward: set[tuple[str, str, str]] = set()  # walked object → subject by the first path
    total: set[tuple[str, str, str]] = set()
    for answer, name in zip(answers, names):
        for path in evidence_paths(answer):
            if not path:
                starts.add(name)  # hop 0: the answer is where the path starts
                continue
            here = _path_start(path, name)
            starts.add(here)
            for step, triple in enumerate(path, start=1):
                total.add(triple)
                subject, _relation, obj = triple
                against = obj == here and subject != here
                here = subject if against else obj
                if triple in steps:
                    steps[triple] = min(steps[triple], step)
                elif len(steps) < max_edges:
                    steps[triple] = step
                    if against:
                        backward.add(triple)
        if answer_hop(answer) == 0:
            starts.add(name)
    for name in names:
        dot.node(name)
    for (subject, relation, obj), step in steps.items():
        dot.edge(subject, relation, obj)
    # where the topic entities came from
    extra: list[str] = []
    sources: list[tuple[str, str, str, str]] = []  # (pseudo node, label, entity, edge label)
    for topic in text_topics(result):
        entity = str(_field(topic, "name"))
        if entity in starts:
            mention = _field(topic, "mention")
            sources.append((QUESTION_NODE, "question", entity,
                            f"mentions “{_short(mention, 24)}”" if mention else "mentions"))
    linked = {entity for _n, _l, entity, _e in sources}
    for topic in image_topics(result, image):
        entity = str(_field(topic, "name"))
        if entity in starts and entity not in linked:
            sources.append((IMAGE_NODE, "image", entity, f"shows ({_pct(_field(topic, 'score', 0))})"))
    for pseudo, label, entity, edge_label in sources:
        extra.append(f"  {dot_quote(pseudo)} -> {dot_quote(entity)} [label={dot_quote(edge_label)}, "
                     f'style=dashed, color="#9aa5b1"];')
    for pseudo, label in dict.fromkeys((p, l) for p, l, _e, _x in sources):
        extra.insert(0, f"  {dot_quote(pseudo)} [label={dot_quote(label)}, {QUESTION}];")
    for start in starts:
        if start in dot.nodes:
            dot.nodes[start] = TOPIC
    for answer, name in zip(answers, names):
        hop = answer_hop(answer)
        attrs = ANSWER_TOPIC if name in starts else ANSWER
        if hop is not None:
            caption = "topic itself" if hop == 0 else f"{hop} hop{'s' if hop != 1 else ''}"
            attrs += f", xlabel={dot_quote(caption)}"
        dot.nodes[name] = attrs
    extra.insert(0, "  forcelabels=true;")  # always draw the answers' hop captions
    colours = {(s, r, o): hop_colour(step) for (s, r, o), step in steps.items()}
    left_out = len(total) - len(steps)
    if left_out > 0:
        extra.append(f'  "__more__" [label="+{left_out} more evidence triples", shape=plaintext, '
                     f'style="", fontcolor="#7b8794"];')
    return dot.source(extra, colours, backward)


def evidence_rows(result: Any, max_answers: int = 5) -> list[dict[str, Any]]:
    """The evidence triples listed under the picture: one row per step of each path."""
    rows = []
    for answer in list(_field(result, "answers") or [])[:max_answers]:
        for p, path in enumerate((p for p in evidence_paths(answer) if p), start=1):
            for hop, (subject, relation, obj) in enumerate(path, start=1):
                rows.append({"answer": str(_field(answer, "name")), "path": p, "hop": hop,
                             "subject": subject, "relation": relation, "object": obj})
    return rows


def path_text(path: Sequence[tuple[str, str, str]]) -> str:
    """A path as one line: ``Land B —capital→ City B``."""
    return "  ·  ".join(f"{s} —{r}→ {o}" for s, r, o in path)


def answer_rows(result: Any) -> list[dict[str, Any]]:
    """Ranked answers with their scores, hop counts and (first) evidence path."""
    rows = []
    for rank, answer in enumerate(_field(result, "answers") or [], start=1):
        score = _field(answer, "score")
        row: dict[str, Any] = {"rank": rank, "answer": str(_field(answer, "name")),
                               "score": round(float(score), 4) if score is not None else None}
        hop = answer_hop(answer)
        if hop is not None:
            row["hops"] = hop
        paths = [p for p in evidence_paths(answer) if p]
        if paths:
            more = f"  (+{len(paths) - 1} more paths)" if len(paths) > 1 else ""
            row["evidence"] = path_text(paths[0]) + more
        else:
            row["evidence"] = "a topic entity itself" if hop == 0 else ""
        rows.append(row)
    return rows


def topic_rows(result: Any, image: bool | None = None) -> list[dict[str, Any]]:
    """The topic entities the answer started from: linked in the question's words (with the
    mention and how it was found) and, when an image was given, recognised in the image."""
    rows = []
    for topic in list(_field(result, "topic") or []):
        mention = _field(topic, "mention")
        rows.append({"entity": str(_field(topic, "name")), "from": "question",
                     "score": round(float(_field(topic, "score", 0.0) or 0.0), 4),
                     "how": str(_field(topic, "source") or ""),
                     "mention": str(mention) if mention else ""})
    for topic in image_topics(result, image):
        rows.append({"entity": str(_field(topic, "name")), "from": "image",
                     "score": round(float(_field(topic, "score", 0.0) or 0.0), 4),
                     "how": "image match", "mention": ""})
    nothing = _field(result, "nothing_shown")
    if nothing is not None and (image_was_used(result) if image is None else image):
        rows.append({"entity": "none of these", "from": "image", "score": round(float(nothing), 4),
                     "how": "no entity the model knows a picture of", "mention": ""})
    return rows


def relation_rows(result: Any) -> list[dict[str, Any]]:
    """Per hop: how likely the answer is that many hops away (``hop_probs``) and the relations
    the model followed at that hop (``relations``, top few with their weights)."""
    hop_probs = list(_field(result, "hop_probs") or [])
    relations = list(_field(result, "relations") or [])
    rows = []
    if hop_probs:
        rows.append({"hop": 0, "probability": round(float(hop_probs[0]), 4),
                     "relations": "none: the answer is a topic entity itself"})
    for t, top in enumerate(relations, start=1):
        shown = ", ".join(f"{name} ({float(weight):.0%})" for name, weight in top)
        rows.append({"hop": t,
                     "probability": round(float(hop_probs[t]), 4) if t < len(hop_probs) else None,
                     "relations": shown})
    return rows


def gate_text(result: Any) -> str | None:
    """Where the topic came from, per the model's text-vs-image gate (``topic_from_text``)."""
    gate = _field(result, "topic_from_text")
    if gate is None:
        return None
    gate = max(0.0, min(1.0, float(gate)))
    return f"Topic taken from the question's words {gate:.0%} · from the image {1 - gate:.0%}"


def no_model_text(kg: str) -> str:
    """What to do when a KG has no trained model yet."""
    return (f"No trained model for KG '{kg}' yet. Train one on the **Models** page, or with the "
            f"CLI: `kqa train --kg {kg} --generated` (questions generated from the KG) or "
            f"`kqa train --kg {kg} --questions FILE` (your question file).")


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


MODEL_COLUMNS = ("name", "kg", "fusion", "text_encoder", "image_encoder", "encoder", "val_hits@1",
                 "examples", "created", "path")


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    return value if isinstance(value, (str, int, bool, type(None))) else str(value)


def model_rows(models: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Trained models (``kqa.api.list_models()``) as rows: the usual columns first, in order,
    the ``metrics`` spread into columns of their own (``val_hits@1``), then whatever else a
    model's record carries (nested values as text)."""
    rows = []
    for model in models:
        model = dict(model) if isinstance(model, Mapping) else dict(vars(model))
        metrics = model.pop("metrics", None)
        if isinstance(metrics, Mapping):
            for key, value in metrics.items():
                model.setdefault(str(key), value)
        elif metrics is not None:
            model["metrics"] = metrics
        row = {c: model.pop(c) for c in MODEL_COLUMNS if c in model}
        row.update(model)
        rows.append({k: _plain(v) for k, v in row.items()})
    return rows


def model_label(model: Mapping[str, Any]) -> str:
    """``name (fusion, encoders, val Hits@1)`` for a select box."""
    path = model.get("path")
    label = str(model.get("name") or (Path(str(path)).name if path else "model"))
    encoders = "+".join(str(model[k]) for k in ("encoder", "text_encoder", "image_encoder")
                        if model.get(k))
    details = [d for d in (encoders, str(model.get("fusion") or "")) if d]
    hits = (model.get("metrics") or {}).get("val_hits@1")
    if isinstance(hits, (int, float)):
        details.append(f"val Hits@1 {hits:.2f}")
    return label + (f" ({', '.join(details)})" if details else "")


def model_choice(model: Mapping[str, Any]) -> tuple[str | None, str]:
    """(value passed as ``model=`` to :func:`kqa.api.ask`, label) for one model record."""
    path = model.get("path")
    return (str(path) if path else model.get("name")), model_label(model)


def models_for_kg(models: Iterable[Mapping[str, Any]], kg: str,
                  default_path: str | Path | None = None) -> list[Mapping[str, Any]]:
    """The models trained for ``kg``, its default model (``$KQA_HOME/models/<kg>``) first."""
    own = [m for m in models if m.get("kg") == kg]
    if default_path is not None:
        default = str(Path(default_path).resolve())
        own.sort(key=lambda m: str(Path(str(m.get("path", ""))).resolve()) != default)
    return own


MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


def check_model_name(name: str) -> str:
    """A model name usable as a folder under ``$KQA_HOME/models``; raises :class:`KqaError`."""
    name = (name or "").strip()
    if not MODEL_NAME.match(name) or name in {".", ".."}:
        raise KqaError(f"model name {name!r} is not usable: use letters, digits, '.', '_' and '-' "
                       f"(at most 80, starting with a letter or digit)")
    return name


def curve_rows(history: Iterable[Mapping[str, Any]]) -> tuple[list[dict[str, Any]],
                                                               list[dict[str, Any]]]:
    """The training log (one record per epoch, from ``train``'s ``log`` callback) as two
    wide tables for line charts: the losses, and Hits@1 (train and validation)."""
    losses, hits = [], []
    for record in history:
        epoch = int(record.get("epoch", len(losses) + 1))
        losses.append({"epoch": epoch, **{k[len("loss_"):]: float(v) for k, v in record.items()
                                          if k.startswith("loss_") and v is not None}})
        hits.append({"epoch": epoch, **{k.replace("_hits@1", ""): float(v)
                                        for k, v in record.items()
                                        if k.endswith("hits@1") and v is not None}})
    return losses, hits


def train_summary(report: Any) -> str:
    """One line for a :class:`kqa.answer.TrainReport`."""
    return (f"Trained {Path(str(report.model_dir)).name}: {report.examples:,} questions "
            f"({report.train:,} train / {report.validation:,} validation), {report.epochs} "
            f"epoch{'s' if report.epochs != 1 else ''} in {report.seconds:.0f} s; "
            f"{report.judged_on} Hits@1 "
            f"{float(report.val_hits1):.2f}. Saved to {report.model_dir}.")


def eval_rows(result: Any, temp_folder: str | Path | None = None) -> list[dict[str, Any]]:
    """Per question file (named without the upload folder) plus an ``all`` row, from a
    :class:`kqa.training.EvalResult`."""
    rows = []
    for group, metrics in sorted((_field(result, "per_group") or {}).items()):
        name = clean_message(str(group), temp_folder) if temp_folder else str(group)
        rows.append({"file": name, "questions": int(metrics["n"]),
                     "Hits@1": round(float(metrics["hits@1"]), 4),
                     "MRR": round(float(metrics["mrr"]), 4)})
    rows.append({"file": "all", "questions": int(_field(result, "n")),
                 "Hits@1": round(float(_field(result, "hits1")), 4),
                 "MRR": round(float(_field(result, "mrr")), 4)})
    return rows


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
