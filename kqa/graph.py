"""The graph view of a stored KG: compact arrays, a networkx MultiDiGraph, traversal helpers.

Entities and literal values are both nodes (literals are answers too: a year, a population).
Nodes are numbered 0..N-1 and edges are three int32 arrays (src, rel, dst). That numbering is
cached on disk per KG version (numpy ``.npz`` without pickle + JSON), so a restart does not
rebuild it from SQL row by row; the networkx view is built from the arrays on demand.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from kqa.config import kg_dir
from kqa.errors import NotFoundError
from kqa.store import Store

ENTITY, LITERAL = 0, 1


@dataclass(frozen=True)
class Edge:
    """One traversed fact: ``subject --relation--> object`` (stored direction)."""

    subject: int
    relation: int
    object: int


@dataclass
class KGraph:
    name: str
    version: int
    node_keys: list[str]
    node_names: list[str]
    node_types: list[str | None]
    node_kind: np.ndarray  # int8: ENTITY or LITERAL
    node_db_id: np.ndarray  # int64: row id in kqa_entities / kqa_literals
    aliases: list[list[str]]
    relation_keys: list[str]
    relation_names: list[str]
    relation_inverse_names: list[str | None]
    src: np.ndarray
    rel: np.ndarray
    dst: np.ndarray
    images: dict[int, list[str]] = field(default_factory=dict)

    # -- sizes and lookups -----------------------------------------------------------------
    @property
    def num_nodes(self) -> int:
        return len(self.node_keys)

    @property
    def num_relations(self) -> int:
        return len(self.relation_keys)

    @property
    def num_edges(self) -> int:
        return int(self.src.shape[0])

    @cached_property
    def _by_key(self) -> dict[str, int]:
        return {k: i for i, k in enumerate(self.node_keys) if self.node_kind[i] == ENTITY}

    @cached_property
    def _by_name(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for i, name in enumerate(self.node_names):
            out.setdefault(name, []).append(i)
        return out

    def find(self, text: str) -> int:
        """A node by key, exact name, or case-insensitive name; raises with suggestions."""
        if text in self._by_key:
            return self._by_key[text]
        hits = self._by_name.get(text)
        if hits:
            return hits[0]
        folded = text.casefold()
        for i, name in enumerate(self.node_names):
            if name.casefold() == folded:
                return i
        from rapidfuzz import process

        near = process.extract(text, self.node_names, limit=5)
        hint = ", ".join(repr(n) for n, _score, _i in near)
        raise NotFoundError(f"no entity {text!r} in KG {self.name!r}; closest: {hint}")

    def label(self, node: int) -> str:
        return self.node_names[node]

    @cached_property
    def schema_words(self) -> frozenset[str]:
        """The words (five letters or more, folded) of the relations' names both ways and of
        the node types: the vocabulary questions about this KG ask with ("subregion")."""
        texts = [*self.relation_names, *(n for n in self.relation_inverse_names if n),
                 *(t for t in self.node_types if t)]
        return frozenset(w for text in texts for w in re.findall(r"[^\W\d_]{5,}", text.casefold()))

    def relation_label(self, rel: int, inverse: bool = False) -> str:
        if inverse:
            return self.relation_inverse_names[rel] or f"{self.relation_names[rel]} (inverse)"
        return self.relation_names[rel]

    # -- adjacency -------------------------------------------------------------------------
    @cached_property
    def _out_csr(self) -> tuple[np.ndarray, np.ndarray]:
        return _csr(self.src, self.num_nodes)

    @cached_property
    def _in_csr(self) -> tuple[np.ndarray, np.ndarray]:
        return _csr(self.dst, self.num_nodes)

    def out_edges(self, node: int) -> np.ndarray:
        """Edge indices leaving ``node``."""
        indptr, order = self._out_csr
        return order[indptr[node]:indptr[node + 1]]

    def in_edges(self, node: int) -> np.ndarray:
        indptr, order = self._in_csr
        return order[indptr[node]:indptr[node + 1]]

    def degree(self) -> np.ndarray:
        return np.bincount(self.src, minlength=self.num_nodes) + np.bincount(
            self.dst, minlength=self.num_nodes)

    def facts(self, node: int, limit: int | None = None) -> list[Edge]:
        """Facts about a node in both directions, outgoing first."""
        edges = np.concatenate([self.out_edges(node), self.in_edges(node)])
        if limit is not None:
            edges = edges[:limit]
        return [Edge(int(self.src[e]), int(self.rel[e]), int(self.dst[e])) for e in edges]

    def neighbours(self, node: int) -> list[int]:
        out = self.dst[self.out_edges(node)]
        inn = self.src[self.in_edges(node)]
        return sorted(set(out.tolist()) | set(inn.tolist()) - {node})

    def neighbourhood(self, seeds: list[int], hops: int, max_nodes: int = 100_000) -> set[int]:
        """Nodes within ``hops`` undirected steps of the seeds (the k-hop subgraph)."""
        seen = set(seeds)
        frontier = list(seeds)
        for _ in range(hops):
            nxt: list[int] = []
            for node in frontier:
                for other in self.neighbours(node):
                    if other not in seen:
                        seen.add(other)
                        nxt.append(other)
                        if len(seen) >= max_nodes:
                            return seen
            frontier = nxt
        return seen

    def paths(self, source: int, target: int, max_hops: int = 3,
              limit: int = 20) -> list[list[tuple[Edge, bool]]]:
        """Up to ``limit`` shortest-first undirected paths; each step is (edge, traversed
        against its stored direction)."""
        found: list[list[tuple[Edge, bool]]] = []
        queue: deque[tuple[int, list[tuple[Edge, bool]]]] = deque([(source, [])])
        while queue and len(found) < limit:
            node, path = queue.popleft()
            if len(path) >= max_hops:
                continue
            visited = {source} | {s.object if not inv else s.subject for s, inv in path}
            for step in self._steps(node):
                edge, inverse = step
                nxt = edge.subject if inverse else edge.object
                if nxt in visited:
                    continue
                new_path = path + [step]
                if nxt == target:
                    found.append(new_path)
                    if len(found) >= limit:
                        break
                else:
                    queue.append((nxt, new_path))
        return found

    def _steps(self, node: int) -> Iterator[tuple[Edge, bool]]:
        for e in self.out_edges(node):
            yield Edge(int(self.src[e]), int(self.rel[e]), int(self.dst[e])), False
        for e in self.in_edges(node):
            yield Edge(int(self.src[e]), int(self.rel[e]), int(self.dst[e])), True

    # -- networkx --------------------------------------------------------------------------
    @cached_property
    def nx(self) -> Any:
        """The KG as a ``networkx.MultiDiGraph``: node ids are node indices with ``name``,
        ``key`` and ``kind`` attributes; edge keys are relation keys."""
        import networkx as nx

        graph = nx.MultiDiGraph(name=self.name, version=self.version)
        kinds = ("entity", "literal")
        graph.add_nodes_from(
            (i, {"name": self.node_names[i], "key": self.node_keys[i],
                 "kind": kinds[int(self.node_kind[i])]})
            for i in range(self.num_nodes))
        keys = self.relation_keys
        graph.add_edges_from(
            (s, d, keys[r], {"relation": keys[r]})
            for s, r, d in zip(self.src.tolist(), self.rel.tolist(), self.dst.tolist()))
        return graph

    def subgraph(self, nodes: set[int]) -> Any:
        return self.nx.subgraph(nodes)


def _csr(index: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(index, kind="stable").astype(np.int64)
    counts = np.bincount(index, minlength=n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return indptr, order


# -- building and caching ------------------------------------------------------------------
_memory: dict[tuple[str, str, int], KGraph] = {}
_lock = threading.Lock()


def load_graph(kg_name: str, store: Store | None = None) -> KGraph:
    """The graph view for the KG's current version: from memory, the disk cache, or the store."""
    store = store or Store()
    version = store.version(kg_name)
    key = (store.url, kg_name, version)
    with _lock:
        if key in _memory:
            return _memory[key]
        folder = kg_dir(kg_name)
        graph = _read_cache(folder, kg_name, version)
        if graph is None:
            graph = build_graph(store, kg_name, version)
            _write_cache(folder, graph)
        for old in [k for k in _memory if k[:2] == key[:2]]:
            del _memory[old]
        _memory[key] = graph
        return graph


def clear_memory() -> None:
    with _lock:
        _memory.clear()


def build_graph(store: Store, kg_name: str, version: int) -> KGraph:
    """Number entities then literals, and turn triples into edge arrays."""
    entities = store.entities(kg_name)
    literals = store.literals(kg_name)
    relations = store.relations(kg_name)
    triples = store.triple_ids(kg_name)
    ent_index = {e["id"]: i for i, e in enumerate(entities)}
    lit_index = {lit["id"]: len(entities) + i for i, lit in enumerate(literals)}
    rel_index = {r["id"]: i for i, r in enumerate(relations)}
    src = np.fromiter((ent_index[s] for s, _r, _o, _l in triples), dtype=np.int32, count=len(triples))
    rel = np.fromiter((rel_index[r] for _s, r, _o, _l in triples), dtype=np.int32, count=len(triples))
    dst = np.fromiter((ent_index[o] if o is not None else lit_index[lit] for _s, _r, o, lit in triples),
                      dtype=np.int32, count=len(triples))
    images: dict[int, list[str]] = {}
    for image in store.images(kg_name):
        images.setdefault(ent_index[image["entity_id"]], []).append(image["path"])
    return KGraph(
        name=kg_name, version=version,
        node_keys=[e["key"] for e in entities] + [f'"{lit["value"]}"^^{lit["datatype"]}' for lit in literals],
        node_names=[e["name"] for e in entities] + [lit["value"] for lit in literals],
        node_types=[e["type"] for e in entities] + [_short_datatype(lit["datatype"]) for lit in literals],
        node_kind=np.array([ENTITY] * len(entities) + [LITERAL] * len(literals), dtype=np.int8),
        node_db_id=np.array([e["id"] for e in entities] + [lit["id"] for lit in literals], dtype=np.int64),
        aliases=[list(e["aliases"] or []) for e in entities] + [[] for _ in literals],
        relation_keys=[r["key"] for r in relations],
        relation_names=[r["name"] for r in relations],
        relation_inverse_names=[r["inverse_name"] for r in relations],
        src=src, rel=rel, dst=dst, images=images,
    )


def _short_datatype(datatype: str) -> str:
    return "literal:" + datatype.rsplit("#", 1)[-1].rsplit("/", 1)[-1]


LITERAL_WORDS = {"integer": "integer number", "double": "decimal number", "decimal": "decimal number",
                 "gYear": "year", "date": "date", "dateTime": "date", "gYearMonth": "month"}


def type_name(node_type: str | None) -> str:
    """A node type as words ("literal:integer" → "integer number", "literal:gYear" → "year"):
    the answer-type head reads types by these words, and generated questions ask "which
    {type}" with them."""
    if not node_type:
        return "entity"
    kind, _, value = node_type.partition(":")
    if kind == "literal":
        return LITERAL_WORDS.get(value, f"{value} value")
    return node_type.replace("_", " ")


_META_FIELDS = ("name", "version", "node_keys", "node_names", "node_types", "aliases",
                "relation_keys", "relation_names", "relation_inverse_names")


def _write_cache(folder: Path, graph: KGraph) -> None:
    stem = folder / f"graph-v{graph.version}"
    meta = {f: getattr(graph, f) for f in _META_FIELDS}
    meta["images"] = {str(k): v for k, v in graph.images.items()}
    tmp_json, tmp_npz = Path(f"{stem}.json.tmp"), Path(f"{stem}.tmp.npz")
    tmp_json.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    np.savez(tmp_npz, node_kind=graph.node_kind, node_db_id=graph.node_db_id,
             src=graph.src, rel=graph.rel, dst=graph.dst)
    os.replace(tmp_npz, f"{stem}.npz")
    os.replace(tmp_json, f"{stem}.json")
    for old in folder.glob("graph-v*"):
        if not old.name.startswith(f"graph-v{graph.version}."):
            old.unlink(missing_ok=True)


def _read_cache(folder: Path, kg_name: str, version: int) -> KGraph | None:
    stem = folder / f"graph-v{version}"
    if not (Path(f"{stem}.json").is_file() and Path(f"{stem}.npz").is_file()):
        return None
    try:
        meta = json.loads(Path(f"{stem}.json").read_text(encoding="utf-8"))
        with np.load(f"{stem}.npz", allow_pickle=False) as arrays:
            data = {k: arrays[k] for k in ("node_kind", "node_db_id", "src", "rel", "dst")}
    except (OSError, ValueError, KeyError):
        return None  # a damaged cache is rebuilt, never trusted
    if meta.get("name") != kg_name or meta.get("version") != version:
        return None
    images = {int(k): v for k, v in meta.pop("images", {}).items()}
    return KGraph(**meta, **data, images=images)
