"""The baseline a user might reach for instead of kqa: semantic search over facts.

Every triple becomes a sentence ("France capital Paris"), embedded with the same MiniLM into
an exact FAISS index; a question is answered by the far endpoint of the nearest facts — the
end of the fact that the question does not mention (txtai's recipe, see ../shared/README.md).
"""

from __future__ import annotations

import time
from typing import Any

import faiss

from kqa.encode import get_encoder
from kqa.graph import KGraph


class FactSearch:
    def __init__(self, graph: KGraph) -> None:
        self.graph = graph
        self.encoder = get_encoder(None, "text")
        names, relations = graph.node_names, graph.relation_names
        self.facts = list(zip(graph.src.tolist(), graph.rel.tolist(), graph.dst.tolist()))
        sentences = [f"{names[s]} {relations[r]} {names[o]}" for s, r, o in self.facts]
        start = time.perf_counter()
        vectors = self.encoder.encode(sentences)
        self.build_seconds = time.perf_counter() - start
        self.index = faiss.IndexFlatIP(vectors.shape[1])
        self.index.add(vectors)

    def answer(self, question: str, k: int = 5) -> list[int]:
        """Nodes ranked by the nearest facts' far endpoints."""
        _scores, rows = self.index.search(self.encoder.encode([question]), k)
        text = question.casefold()
        ranked: list[int] = []
        for row in rows[0]:
            s, _r, o = self.facts[row]
            far = o if self.graph.node_names[s].casefold() in text else s
            if far not in ranked:
                ranked.append(far)
        return ranked


def hits_at_1(search: FactSearch, examples: list[Any]) -> float:
    hits = [bool(ranked := search.answer(e.text)) and ranked[0] in set(e.answers) for e in examples if e.answers]
    return sum(hits) / max(len(hits), 1)
