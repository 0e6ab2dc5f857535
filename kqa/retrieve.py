"""Retrieve stage: the multi-hop subgraph a question's answer is read from.

Entity scores start on the topic entities and flow along edges, each hop weighted by the
model's probability for the edge's relation (in either direction: slot ``r`` follows stored
edges forward, slot ``R + r`` backward), as TransferNet does; when answering, among the
relations the nodes holding score actually have (a relation none of them has is not a reading
of the question that can be right). Everything is sparse: only nodes
with a score are expanded, so the subgraph retrieved for a question is exactly the set of
nodes touched. Hubs (nodes with more than ``hub_degree`` edges) are not expanded past the
first hop: reaching every film through "Drama" retrieves noise, not evidence. The same code
trains the model (autograd flows through the scores and relation probabilities) and answers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from kqa.graph import KGraph

EPS = 1e-5  # training: keep faint paths, their gradients teach the relation choice
EPS_INFERENCE = 1e-3  # answering: scores this faint never reach the top answers


@dataclass
class Sparse:
    """Scores of a batch of questions over nodes: entry i is (batch[i], node[i], value[i])."""

    batch: torch.Tensor
    node: torch.Tensor
    value: torch.Tensor

    @staticmethod
    def empty(device: torch.device | str = "cpu") -> "Sparse":
        z = torch.zeros(0, dtype=torch.long, device=device)
        return Sparse(z, z.clone(), torch.zeros(0, device=device))

    def to_dict(self, row: int = 0) -> dict[int, float]:
        keep = self.batch == row
        return dict(zip(self.node[keep].tolist(), self.value[keep].detach().float().tolist()))


def default_hub_degree(degree: np.ndarray) -> int:
    """At least 1000, and never below the 99.9th percentile of the KG's degrees."""
    if degree.size == 0:
        return 1000
    return int(max(1000, np.percentile(degree, 99.9)))


class Propagator:
    """Relation-weighted sparse propagation over one KG (both edge directions)."""

    def __init__(self, graph: KGraph, hub_degree: int | None = None,
                 device: torch.device | str = "cpu") -> None:
        count = graph.num_relations
        heads = np.concatenate([graph.src, graph.dst]).astype(np.int64)
        tails = np.concatenate([graph.dst, graph.src]).astype(np.int64)
        slots = np.concatenate([graph.rel, graph.rel + count]).astype(np.int64)
        self.num_nodes = graph.num_nodes
        self.num_slots = 2 * count
        degree = np.bincount(heads, minlength=self.num_nodes)
        self.hub_degree = hub_degree or default_hub_degree(degree)
        self.device = torch.device(device)
        out_order = np.argsort(heads, kind="stable")
        in_order = np.argsort(tails, kind="stable")
        self.out_ptr = self._t(_indptr(heads, self.num_nodes))
        self.out_tail = self._t(tails[out_order])
        self.out_slot = self._t(slots[out_order])
        self.in_ptr_np = _indptr(tails, self.num_nodes)
        self.in_head_np = heads[in_order]
        self.in_slot_np = slots[in_order]
        self.degree = self._t(degree)
        self.expandable = self._t(degree <= self.hub_degree)
        self.expandable_np = degree <= self.hub_degree  # evidence walks read it edge by edge
        has_slot = np.zeros((self.num_nodes, self.num_slots), dtype=bool)
        has_slot[heads, slots] = True
        self.has_slot = self._t(has_slot)  # [N, S] whether a node has an edge of each slot (1 byte each)

    def _t(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

    def step(self, scores: Sparse, relation_probs: torch.Tensor, first: bool,
             applicable: bool = True, slot_types: torch.Tensor | None = None) -> tuple[Sparse, torch.Tensor]:
        """One hop: ``new[b, tail] = min(1, Σ score[b, head] · q[b, slot])`` over edges, ``q``
        the relation probabilities, given what the frontier can follow when ``applicable``
        (:meth:`applicable`); ``q`` is returned with the scores: it is what the hop followed."""
        keep = scores.value.detach() > (EPS if torch.is_grad_enabled() else EPS_INFERENCE)
        if not first:
            keep &= self.expandable[scores.node]
        batch, node, value = scores.batch[keep], scores.node[keep], scores.value[keep]
        if first and applicable:
            value = self.readable_topic(batch, node, value, relation_probs)
        followed = self.applicable(batch, node, value, relation_probs, slot_types) if applicable else relation_probs
        starts = self.out_ptr[node]
        counts = self.out_ptr[node + 1] - starts
        total = int(counts.sum())
        if total == 0:
            return Sparse.empty(self.device), followed
        pair = torch.repeat_interleave(counts, output_size=total)  # each frontier entry, once per edge
        # edge k of the flat list is the (k − first k of its entry)-th edge of its node
        edge = (starts + counts - torch.cumsum(counts, 0))[pair] + torch.arange(total, device=self.device)
        tail, slot, edge_batch = self.out_tail[edge], self.out_slot[edge], batch[pair]
        message = value[pair] * followed[edge_batch, slot]
        key = edge_batch * self.num_nodes + tail
        unique, inverse = torch.unique(key, return_inverse=True)
        summed = torch.zeros(len(unique), dtype=message.dtype, device=self.device).index_add(0, inverse, message)
        return Sparse(unique // self.num_nodes, unique % self.num_nodes, summed.clamp(max=1.0)), followed

    def readable_topic(self, batch: torch.Tensor, node: torch.Tensor, value: torch.Tensor,
                       relation_probs: torch.Tensor) -> torch.Tensor:
        """A question's topic weight moved to the topic entities that have the relations read
        for the first hop: each keeps ``w · f`` of it, renormalised over the question, ``f`` the
        probability of the reading it can follow (a question none of whose topic entities can
        follow it keeps its weights). When a name denotes several entities (MetaQA's actor
        "Sylvester Stallone" and the tag "sylvester stallone", linked at 1.0 and 0.98, each half
        of the topic), "the movies directed by Sylvester Stallone" is about the one that
        directed: its answers had half the score, and a confidence of 0.5, for want of an edge
        of the other. Answering only: training follows the reading as it is (:meth:`run`)."""
        fit = (relation_probs[batch] * self.has_slot[node].to(relation_probs.dtype)).sum(-1)
        weighted = value * fit.to(value.dtype)
        total = torch.zeros(relation_probs.shape[0], dtype=value.dtype, device=value.device)
        kept = total.index_add(0, batch, weighted)
        total = total.index_add(0, batch, value)
        moved = weighted * (total / kept.clamp(min=1e-12))[batch]
        return torch.where(kept[batch] > 1e-9, moved, value)

    def applicable(self, batch: torch.Tensor, node: torch.Tensor, value: torch.Tensor,
                   relation_probs: torch.Tensor, slot_types: torch.Tensor | None = None) -> torch.Tensor:
        """The relation probabilities given what the frontier can follow: ``p(s) · a(s)``,
        ``a(s)`` the share of the frontier's score on nodes with an edge of slot ``s``, plus
        the probability of what it cannot follow, ``p(s) · (1 − a(s))``, passed on; renormalised.
        A reader that takes "which continent is X part of" for the relation from a subregion to
        its continent, with X a country, then follows a reading that X has instead of losing
        the score on a relation X does not have.

        Passed on to what: without ``slot_types`` (a KG of one node type), to every slot the
        frontier has, in proportion to its own probability (which is plain renormalisation).
        With ``slot_types`` ([S, K], the share of each slot's answers of each type), node by
        node of the frontier, to the node's slots whose answers are of the same types as the
        slot it lacks, in proportion to their probability times that overlap (as without types
        where none of its slots overlaps; :meth:`_passed_on_by_type`): the reader read which
        relation, and with it what kind of answer is asked for; where the relation is missing,
        the kind of answer still stands. "Which continent is X part of" read as the
        subregion's continent (a region) then gives X's own region, not, by the odds of the
        runner-up reading, its subregion."""
        mass = torch.zeros_like(relation_probs)
        mass = mass.index_add(0, batch, value.detach().unsqueeze(-1) * self.has_slot[node].to(value.dtype))
        weighted = relation_probs * mass
        if slot_types is not None:
            weighted = self._passed_on_by_type(relation_probs, weighted, batch, node, value, slot_types)
        total = weighted.sum(-1, keepdim=True)
        return torch.where(total > 0, weighted / total.clamp(min=1e-12), relation_probs)

    def _passed_on_by_type(self, relation_probs: torch.Tensor, weighted: torch.Tensor, batch: torch.Tensor,
                           node: torch.Tensor, value: torch.Tensor, slot_types: torch.Tensor) -> torch.Tensor:
        """:meth:`applicable`'s reading with what each frontier node lacks passed on to its own
        slots that lead to the same types (unnormalised). Node by node, not over the frontier
        as a whole: where a frontier is a subregion at 1.0 and its region at 0.03, a reading
        neither has must not all go to the one slot the faint region has that leads to the
        type asked for; each node follows what it has, weighed by its score (a topic is several
        entities where a name is ambiguous, or a picture may show one of five)."""
        value = value.detach()
        has = self.has_slot[node].to(relation_probs.dtype)  # [F, S]
        kept = relation_probs[batch] * has  # [F, S] what each node can follow of the reading
        lost = relation_probs[batch] - kept
        types = slot_types.to(relation_probs.dtype)
        affinity = types @ types.T  # [S lost, S' kept]: how far two slots lead to the same types
        reach = kept @ affinity.T  # [F, S]: how much of the kept reading leads to slot s's types
        matched = reach > 0
        ratio = torch.where(matched, lost / reach.clamp(min=1e-30), torch.zeros_like(lost))
        # ``weighted``: applicable's plain reading, for what no slot a node keeps matches in type
        plain = weighted / weighted.sum(-1, keepdim=True).clamp(min=1e-12)
        unmatched = (lost * ~matched).sum(-1, keepdim=True)  # [F, 1]
        followed = kept * (1.0 + ratio @ affinity) + unmatched * plain[batch]
        summed = torch.zeros_like(relation_probs).index_add(0, batch, value.unsqueeze(-1) * followed)
        score = torch.zeros(len(relation_probs), dtype=value.dtype, device=value.device).index_add(0, batch, value)
        return summed / score.clamp(min=1e-12).unsqueeze(-1)

    def run(self, start: Sparse, relation_probs: list[torch.Tensor], applicable: bool = True,
            hop_probs: torch.Tensor | None = None, slot_types: torch.Tensor | None = None
            ) -> tuple[list[Sparse], list[torch.Tensor]]:
        """Scores after 0, 1, ..., len(relation_probs) hops, and the relation probabilities
        each hop followed (:meth:`step`).

        ``applicable=False`` follows the relations as read: the model trains so, because
        renormalising over what the frontier has takes the reader's lesson away wherever
        the topic has one relation (a person who only directed: any reading finds the
        films). Trained through it, a MetaQA model lost 0.1–0.4 Hits@1 points per hop and
        2.2 on paraphrased questions.

        Paths never come back to the topic entities: "films that share a director with X"
        are the director's other films, and what is said about them does not include X's
        own facts. So after the second and later hops the topic entities' scores are removed.
        The first hop keeps them: one step cannot return to where it started, and when a name
        is ambiguous (Singapore the country and the city) one reading's fact may lead to the
        other ("the capital of Singapore").

        ``hop_probs`` ([B, 1 + hops], answering only): the hops still to come are not walked
        (they are left empty) once they carry less than ``EPS_INFERENCE`` of every question's
        hop-count probability: their answers could move no score by more than that (a hop
        that reached nothing, which :meth:`combine` renormalises away, leaves every later hop
        empty too), and a one-hop question then costs one step, not three (about 0.3 ms each
        when answering one question).

        ``slot_types``: what a relation the topic entities lack passes its probability on to
        (:meth:`applicable`), at the first hop only. There the frontier is what the question
        names, and a relation it lacks is a misreading of which relation, not of what is asked
        for. A later hop's frontier lacking the relation read is more often a sign that the
        question has ended: a model unsure of the hop count reads its last relation again for
        the hops after it ("which nation's capital is Belgrade": capital-of at every hop), and
        following the same type there walked on from Serbia to its neighbours (four such
        questions lost on one countries model of three; docs/results.md)."""
        hops, followed = [start], []
        topic = start.batch * self.num_nodes + start.node
        for t, probs in enumerate(relation_probs):
            if hop_probs is not None and t > 0 and self._settled(hops, hop_probs):
                followed.extend(relation_probs[t:])
                hops.extend(Sparse.empty(self.device) for _ in relation_probs[t:])
                break
            reached, probs = self.step(hops[-1], probs, first=(t == 0), applicable=applicable,
                                       slot_types=slot_types if t == 0 else None)
            followed.append(probs)
            if t == 0:
                hops.append(reached)
                continue
            keep = ~torch.isin(reached.batch * self.num_nodes + reached.node, topic)
            hops.append(Sparse(reached.batch[keep], reached.node[keep], reached.value[keep]))
        return hops, followed

    @staticmethod
    def _settled(hops: list[Sparse], hop_probs: torch.Tensor) -> bool:
        """Whether the hops after ``len(hops) - 1`` can be skipped (:meth:`run`)."""
        return float(hop_probs[:, len(hops):].sum(-1).max()) < EPS_INFERENCE

    def combine(self, hops: list[Sparse], hop_probs: torch.Tensor, batch_size: int) -> torch.Tensor:
        """Dense [B, N] answer scores: the mixture of the hops' scores by the hop-count
        probabilities (hop 0 answers "which entity is this?"), over the hops that reached
        something."""
        both, hop = stack_hops(hops)
        flat = torch.zeros(batch_size * self.num_nodes, dtype=hop_probs.dtype, device=self.device)
        flat = flat.index_add(0, both.batch * self.num_nodes + both.node, hop_probs[both.batch, hop] * both.value)
        reached = torch.zeros_like(hop_probs, dtype=torch.bool)
        reached[both.batch, hop] = True
        # probability given to hop counts whose path leads nowhere is no evidence against the
        # answers the other hops found: renormalise over the hop counts that reached a node
        mass = (hop_probs * reached).sum(-1).clamp(min=1e-6)
        return (flat.view(batch_size, self.num_nodes) / mass.unsqueeze(-1)).clamp(max=1.0)

    # -- evidence --------------------------------------------------------------------------
    def backtrack(self, hops: list[dict[int, float]], probs: list[np.ndarray], answer: int,
                  hop: int, max_paths: int = 3, branch: int = 2) -> list[list[tuple[int, int, int]]]:
        """The paths (lists of (head, slot, tail) steps) that carried score to ``answer`` at
        ``hop``: the strongest contributions first."""
        if hop == 0:
            return [[]] if answer in hops[0] else []
        start, end = self.in_ptr_np[answer], self.in_ptr_np[answer + 1]
        previous = hops[hop - 1]
        contributions = []
        for head, slot in zip(self.in_head_np[start:end].tolist(), self.in_slot_np[start:end].tolist()):
            score = previous.get(head, 0.0)
            if score <= EPS or (hop - 1 >= 1 and not self.expandable_np[head]):
                continue
            contributions.append((score * float(probs[hop - 1][slot]), head, slot))
        contributions.sort(reverse=True)
        if not contributions:
            return []
        best = contributions[0][0]
        paths: list[list[tuple[int, int, int]]] = []
        for weight, head, slot in contributions[:branch]:
            if weight < 0.05 * best:
                break
            for prefix in self.backtrack(hops, probs, head, hop - 1, max_paths, branch):
                paths.append(prefix + [(head, slot, answer)])
                if len(paths) >= max_paths:
                    return paths
        return paths


def stack_hops(hops: list[Sparse]) -> tuple[Sparse, torch.Tensor]:
    """Every hop's entries as one :class:`Sparse`, and each entry's hop number: a sum per
    (question, hop) is then one call, not one per hop (answering one question is a few hundred
    small tensor calls, each a fixed cost)."""
    device = hops[0].node.device
    lengths = torch.tensor([len(h.node) for h in hops], device=device)
    hop = torch.repeat_interleave(torch.arange(len(hops), device=device), lengths)
    both = Sparse(torch.cat([h.batch for h in hops]), torch.cat([h.node for h in hops]),
                  torch.cat([h.value for h in hops]))
    return both, hop


def _indptr(index: np.ndarray, n: int) -> np.ndarray:
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(index, minlength=n), out=indptr[1:])
    return indptr
