"""The answer model: fuses the question text, an optional image and the retrieved knowledge,
then reasons over relations hop by hop to rank answer entities.

Per hop, a query conditioned on the fused question vector attends over the question's tokens
and picks a distribution over relations (both directions); entity scores then flow along
edges weighted by those probabilities (:mod:`kqa.retrieve`). A hop-count head mixes the hop
outputs, so 0- to ``max_hops``-hop questions are one model and the evidence path falls out of
the attention. Relations are represented from their names' text embeddings (plus a small
KG-specific offset), so a model trained on one KG starts a new KG with relations it can
already read. The question encoder (MiniLM) stays frozen; the token states it produces are the
model's input.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from kqa.fuse import Fusion
from kqa.retrieve import Propagator, Sparse, stack_hops


@dataclass
class ModelConfig:
    """Everything needed to rebuild the module (saved as JSON next to the weights)."""

    num_slots: int  # 2 × relations
    text_dim: int = 384
    image_dim: int = 0  # 0: no image modality
    hidden: int = 256
    max_hops: int = 3
    fusion: str = "gated"
    heads: int = 4
    dropout: float = 0.1
    align_dim: int = 256
    recognise: bool = False  # the image feature is a KG-specific recogniser's embedding
    recognise_size: int = 0  # its input side
    recognise_entities: int = 0  # its rows
    layers: int = 2  # trainable transformer layers over the frozen encoder's token states
    token_dropout: float = 0.1  # training only: hide this share of the question's tokens
    answer_types: bool = False  # weigh hop counts by whether their answers have the asked-for type
    typed_relations: bool = False  # answering: weigh the last hop's relations by the type they lead to

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Batch:
    """Model inputs for B questions (already on the model's device)."""

    states: torch.Tensor  # [B, T, text_dim] token states
    mask: torch.Tensor  # [B, T] bool
    pooled: torch.Tensor  # [B, text_dim]
    topic_text: Sparse  # linked (or gold) topic entities from the text, weights sum ≤ 1
    image: torch.Tensor | None = None  # [B, image_dim]
    image_present: torch.Tensor | None = None  # [B] bool

    @property
    def size(self) -> int:
        return int(self.states.shape[0])


@dataclass
class KnowledgeTensors:
    """Per-KG tensors the model reads: node name vectors, per-node relation histograms,
    relation-name vectors and the entity-image bank."""

    relation_text: torch.Tensor  # [num_slots, text_dim]
    node_text: torch.Tensor  # [N, text_dim] (zeros for nodes without a name vector)
    node_slots: torch.Tensor  # [N, num_slots] normalised incident-relation counts
    image_bank: torch.Tensor | None = None  # [M, image_dim]
    image_bank_node: torch.Tensor | None = None  # [M]
    node_type: torch.Tensor | None = None  # [N] each node's type (None: the KG has one type)
    type_text: torch.Tensor | None = None  # [K, text_dim] the type names' text vectors
    slot_types: torch.Tensor | None = None  # [num_slots, K] share of each slot's tails of each type
    picture_group: torch.Tensor | None = None  # [N] group of entities whose pictures look the same (-1: none)
    picture_share: torch.Tensor | None = None  # [N] share of its group's picture: 1 the most facts, else 0
    picture_groups: int = 0


@dataclass
class Output:
    scores: torch.Tensor  # [B, N] final answer scores in [0, 1]
    relation_probs: list[torch.Tensor]  # per hop [B, num_slots]
    hop_probs: torch.Tensor  # [B, max_hops + 1]
    hops: list[Sparse]  # entity scores after each hop
    mention_logits: torch.Tensor  # [B, T]
    shares: torch.Tensor  # [B, M] modality shares, in fusion.modalities order
    text_gate: torch.Tensor  # [B] weight of the text-linked topic vs the image-linked one
    image_logits: torch.Tensor | None = None  # [B, E_img] over image entities
    image_nodes: torch.Tensor | None = None  # [E_img]
    type_logits: torch.Tensor | None = None  # [B, K] the answer type the question asks for
    extras: dict[str, Any] = field(default_factory=dict)


class QAModel(nn.Module):
    def __init__(self, config: ModelConfig, fusion: Fusion, recogniser: nn.Module | None = None) -> None:
        super().__init__()
        self.config = config
        d = config.hidden
        self.token_proj = nn.Sequential(nn.Linear(config.text_dim, d), nn.LayerNorm(d))
        layer = nn.TransformerEncoderLayer(d, config.heads, 2 * d, config.dropout,
                                           batch_first=True, norm_first=True)
        self.context = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.mention_head = nn.Linear(d, 1)
        self.rel_proj = nn.Sequential(nn.Linear(config.text_dim, d), nn.LayerNorm(d))
        self.rel_offset = nn.Parameter(torch.zeros(config.num_slots, d))  # KG-specific
        self.fusion = fusion
        self.hop_query = nn.Parameter(torch.randn(config.max_hops, d) * 0.02)
        self.query_mix = nn.Sequential(nn.Linear(2 * d, d), nn.GELU(), nn.Linear(d, d))
        self.rel_match = nn.Linear(d, d)
        # hop 0 ("which entity is this?") is judged from the fused question; stopping after
        # hop t from what hop t attended to, so the count follows the reading of the question
        self.stop_zero = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, 1))
        self.stop_head = nn.Sequential(nn.Linear(2 * d, d), nn.GELU(), nn.Linear(d, 1))
        self.gate_head = nn.Linear(d, 1)
        self.kg_rel = nn.Linear(d, d)
        if config.answer_types:  # types are read by name, so a new KG's types are not strangers
            self.type_query = nn.Linear(d, d)
            self.type_key = nn.Sequential(nn.Linear(config.text_dim, d), nn.LayerNorm(d))
        # a trained kqa.recognise.Recogniser: image features are its embeddings and it names
        # the entity shown; without one, a learned projection aligns raw encoder features
        # with the KG's entity images
        self.recogniser = recogniser
        self._answering: dict[str, Any] = {}  # per-KG values derived from the weights (answering)
        if config.image_dim and recogniser is None:
            self.image_align = nn.Sequential(nn.Linear(config.image_dim, config.align_dim), nn.GELU(),
                                             nn.Linear(config.align_dim, config.align_dim))
        if config.image_dim:
            self.log_inv_temperature = nn.Parameter(torch.tensor(math.log(20.0)))
            # "none of these": the logit a picture of no known entity should win with
            self.null_logit = nn.Parameter(torch.tensor(10.0))

    # -- pieces ----------------------------------------------------------------------------
    def _constant(self, name: str, knowledge: KnowledgeTensors, make: Any) -> Any:
        """A value that depends only on the weights and the KG: made once per KG while
        answering (answering one question is a few hundred small calls; these are not
        needed again), every time while training."""
        if self.training or torch.is_grad_enabled():
            return make()
        if self._answering.get("knowledge") is not knowledge:
            self._answering = {"knowledge": knowledge}
        if name not in self._answering:
            self._answering[name] = make()
        return self._answering[name]

    def relations(self, knowledge: KnowledgeTensors) -> torch.Tensor:
        """Relation vectors [num_slots, hidden]."""
        return self._constant("relations", knowledge,
                              lambda: self.rel_proj(knowledge.relation_text) + self.rel_offset)

    def _relation_reader(self, knowledge: KnowledgeTensors, relations: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """``rel_match`` folded into the relation vectors: a hop's relation logits
        ``rel_match(c) · R / √d`` are then one ``linear(c, weight, bias)``."""
        def make() -> tuple[torch.Tensor, torch.Tensor]:
            scale = 1.0 / math.sqrt(relations.shape[-1])
            return (relations @ self.rel_match.weight) * scale, (relations @ self.rel_match.bias) * scale
        return self._constant("relation_reader", knowledge, make)

    def train(self, mode: bool = True) -> "QAModel":
        self._answering = {}  # weights may change from here: forget derived values
        return super().train(mode)

    def load_state_dict(self, *args: Any, **kwargs: Any) -> Any:
        self._answering = {}
        return super().load_state_dict(*args, **kwargs)

    def encode_tokens(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        mask = batch.mask
        if self.training and self.config.token_dropout > 0:
            # word dropout: answers must not hinge on any one word of a phrasing
            hide = torch.rand(mask.shape, device=mask.device) < self.config.token_dropout
            hide[:, 0] = False
            mask = mask & ~hide
        tokens = self.context(self.token_proj(batch.states), src_key_padding_mask=~mask)
        return tokens, self.mention_head(tokens).squeeze(-1)

    def link_image(self, batch: Batch, knowledge: KnowledgeTensors
                   ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Logits over the entities that have images (the best-matching view per entity),
        plus a last column for "no entity of this KG is shown"."""
        if self.recogniser is not None:
            return self._recognised(batch)
        if not self.config.image_dim or batch.image is None or knowledge.image_bank is None:
            return None, None
        query = nn.functional.normalize(self.image_align(batch.image), dim=-1)
        bank = nn.functional.normalize(self.image_align(knowledge.image_bank), dim=-1)
        sims = query @ bank.T * self.log_inv_temperature.exp()  # [B, M]
        nodes, row_entity = torch.unique(knowledge.image_bank_node, return_inverse=True)
        per_entity = torch.full((sims.shape[0], len(nodes)), -1e4, dtype=sims.dtype, device=sims.device)
        per_entity = per_entity.scatter_reduce(1, row_entity.expand_as(sims), sims, "amax")
        null = self.null_logit.expand(sims.shape[0], 1)
        return torch.cat([per_entity, null], dim=1), nodes

    def _recognised(self, batch: Batch) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The recogniser's logits over its entities still in the KG, plus "none of these"."""
        if batch.image is None:
            return None, None
        rec = self.recogniser
        keep = rec.entity_nodes >= 0  # type: ignore[union-attr,operator]
        logits = rec.logits(batch.image)[:, keep]  # type: ignore[union-attr,operator]
        null = self.null_logit.expand(logits.shape[0], 1)
        return torch.cat([logits, null], dim=1), rec.entity_nodes[keep]  # type: ignore[union-attr,index]

    def knowledge_feature(self, topic: Sparse, batch_size: int, knowledge: KnowledgeTensors,
                          relations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The KG modality: the topic entities' name vectors and the relations around them."""
        text_dim = knowledge.node_text.shape[1]
        names = torch.zeros(batch_size, text_dim, device=relations.device)
        slots = torch.zeros(batch_size, relations.shape[0], device=relations.device)
        if len(topic.node):
            weight = topic.value.unsqueeze(-1)
            names = names.index_add(0, topic.batch, weight * knowledge.node_text[topic.node].float())
            slots = slots.index_add(0, topic.batch, weight * knowledge.node_slots[topic.node].float())
        context = self.kg_rel(slots @ relations)
        present = torch.zeros(batch_size, dtype=torch.bool, device=relations.device)
        present[topic.batch] = True
        return torch.cat([names, context], dim=-1), present

    # -- forward ---------------------------------------------------------------------------
    def forward(self, batch: Batch, knowledge: KnowledgeTensors, propagator: Propagator,
                image_topic_k: int = 5,
                encoded: tuple[torch.Tensor, torch.Tensor] | None = None) -> Output:
        """``encoded``: the result of :meth:`encode_tokens` for this batch, when the caller
        already has it (answering links the question with the mention logits first)."""
        size = batch.size
        tokens, mention_logits = encoded if encoded is not None else self.encode_tokens(batch)
        relations = self.relations(knowledge)
        image_logits, image_nodes = self.link_image(batch, knowledge)
        topic_image = _image_topic(image_logits, image_nodes, batch.image_present, image_topic_k, knowledge)
        has_text = torch.zeros(size, dtype=torch.bool, device=tokens.device)
        has_text[batch.topic_text.batch] = True
        has_image = torch.zeros(size, dtype=torch.bool, device=tokens.device)
        has_image[topic_image.batch] = True
        kg_topic = _concat(batch.topic_text, _scale(topic_image, (~has_text).float()))
        kg_feature, kg_present = self.knowledge_feature(kg_topic, size, knowledge, relations)
        features = {"text": batch.pooled, "kg": kg_feature}
        present = {"text": torch.ones(size, dtype=torch.bool, device=tokens.device), "kg": kg_present}
        if self.config.image_dim:
            image_present = batch.image_present if batch.image_present is not None else has_image
            features["image"] = batch.image if batch.image is not None else \
                torch.zeros(size, self.config.image_dim, device=tokens.device)
            present["image"] = image_present
        fused, shares = self.fusion(features, present)
        gate = torch.sigmoid(self.gate_head(fused).squeeze(-1))
        gate = torch.where(has_text & ~has_image, torch.ones_like(gate), gate)
        gate = torch.where(~has_text, torch.zeros_like(gate), gate)
        if image_logits is not None:
            # a picture that shows no known entity ("none of these") gives no topic: the share
            # of the topic it would have given goes to the entity the words name ("what is the
            # capital of France" asked with a photo of a horse is about France)
            nothing = torch.softmax(image_logits.float(), dim=-1)[:, -1].to(gate.dtype)
            gate = torch.where(has_text & has_image, gate + (1.0 - gate) * nothing, gate)
        start = _concat(_scale(batch.topic_text, gate), _scale(topic_image, 1.0 - gate))
        relation_probs, contexts = self._hop_relations(fused, tokens, batch.mask,
                                                       self._relation_reader(knowledge, relations))
        read = torch.stack(contexts, dim=1)  # [B, max_hops, d]: one call for every hop's stop
        stop_after = self.stop_head(torch.cat([fused.unsqueeze(1).expand_as(read), read], dim=-1)).squeeze(-1)
        hop_probs = torch.softmax(torch.cat([self.stop_zero(fused), stop_after], dim=-1), dim=-1).float()
        # the sparse propagation sums in float32 whatever precision the dense part ran in (bf16
        # under mixed precision): scores are products of a few probabilities, summed over edges
        relation_probs = [p.float() for p in relation_probs]
        type_logits = self._type_logits(fused, knowledge)
        typed_answering = type_logits is not None and self.config.typed_relations and not self.training
        if typed_answering and knowledge.slot_types is not None:
            relation_probs = _typed_relations(relation_probs, hop_probs, type_logits, knowledge.slot_types)
        # answering follows the relations the frontier has; training, the reader's own reading
        # answering without the type head skips hops the hop count gives (almost) nothing to;
        # with it, a faint hop that reaches the asked type can still be reweighed to the top
        skip = hop_probs if not self.training and type_logits is None else None
        hops, relation_probs = propagator.run(start, relation_probs, applicable=not self.training,
                                              hop_probs=skip, slot_types=knowledge.slot_types)
        extras: dict[str, Any] = {}
        if type_logits is not None:
            if typed_answering:
                # the hop counts before the type head reweighs them: an answer it puts above
                # another type's can then say what the wording was read as
                extras["untyped_hop_probs"] = hop_probs
            hop_probs = _typed_hops(hop_probs, hops, type_logits, knowledge.node_type)
        scores = propagator.combine(hops, hop_probs, size)
        if typed_answering:
            scores = _typed_answers(scores, type_logits, knowledge.node_type)
        return Output(scores, relation_probs, hop_probs, hops, mention_logits, shares, gate,
                      image_logits, image_nodes, type_logits, extras)

    def _type_logits(self, fused: torch.Tensor, knowledge: KnowledgeTensors) -> torch.Tensor | None:
        """[B, K] the answer type each question asks for, read from the fused question against
        the type names; None for a model without the head or a KG with one type."""
        if not self.config.answer_types or knowledge.node_type is None or knowledge.type_text is None:
            return None
        keys = self._constant("type_keys", knowledge, lambda: self.type_key(knowledge.type_text.float()))
        return self.type_query(fused) @ keys.T / math.sqrt(keys.shape[-1])

    def _hop_relations(self, fused: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor,
                       reader: tuple[torch.Tensor, torch.Tensor]
                       ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per hop: the relation distribution and the token context it was read from
        (``reader``: :meth:`_relation_reader`)."""
        scale = 1.0 / math.sqrt(tokens.shape[-1])
        hidden = ~mask
        context = torch.zeros_like(fused)
        probs, contexts = [], []
        for t in range(self.config.max_hops):
            query = self.query_mix(torch.cat([fused, context], dim=-1)) + self.hop_query[t]
            attention = (tokens @ query.unsqueeze(-1)).squeeze(-1) * scale
            attention = torch.softmax(attention.masked_fill(hidden, -1e4), dim=-1)
            context = (attention.unsqueeze(-1) * tokens).sum(1)
            probs.append(torch.softmax(nn.functional.linear(context, *reader), dim=-1))
            contexts.append(context)
        return probs, contexts


def type_weight(type_logits: torch.Tensor) -> torch.Tensor:
    """[B, K] how much an answer of each type counts: the most likely type fully, the others by
    their odds against it. (Weighing every answer's score by it was measured: region
    questions +1.5 points, subregion ones −3 to −22: the head confuses those two types;
    :func:`_typed_answers` does it only where the head is near-certain.)"""
    probs = torch.softmax(type_logits, dim=-1)
    return probs / probs.amax(dim=-1, keepdim=True)


SURE_TYPE = 0.99  # the answer-type head's probability from which its reading overrides the reader's


def _typed_answers(scores: torch.Tensor, type_logits: torch.Tensor, node_type: torch.Tensor) -> torch.Tensor:
    """Answers of another type than the asked one ranked below those of it, for questions whose
    asked type the answer-type head is near-certain of (≥ :data:`SURE_TYPE`) and that reached
    an answer of that type: an answer of another type scores its score × :func:`type_weight`,
    and at most the best answer of the asked type × that weight, so it ranks below it however
    faint the asked type's answers are. (Before, the weight alone: "in what part of the world
    is Kenya", read as the subregion at 0.9995 and one hop at 0.9998 while the type head read a
    region at 0.998, kept Sub-Saharan Africa at 0.0015 above Africa, reached at 0.0007 through
    two hops. Three trained countries models, the benchmark's held-out test set: image 87.44 →
    88.48 % on one and unchanged on the others, text 92.58 → 92.73, 94.80 → 94.90 % and
    unchanged; every gain a region question, two single questions lost; docs/results.md.)

    The relation reader reads words, and a held-out wording can tie one to the wrong relation
    with odds of 10⁴ and more ("which language is used in Peru": "used in" is how the currency
    templates ask; read as the currency at 0.92 even after :func:`_typed_relations`'s vote),
    while the type head, reading the whole sentence, is sure it asks for a language (0.9993).
    Where the head is unsure the reader decides: the head confuses a region with a subregion
    ("what part of the continent is X in": region at 0.52–0.83 in one model, the reader right;
    in another it crossed the line for two countries, and the rule cost those two), and
    weighing every answer by it unconditionally cost subregion questions 3–22 points."""
    probs = torch.softmax(type_logits.float(), dim=-1)
    top_prob, top = probs.max(dim=-1)
    node_weight = (probs / top_prob.unsqueeze(1))[:, node_type]  # [B, N]: type_weight, from these probs
    of_type = node_type.unsqueeze(0) == top.unsqueeze(1)
    applies = (top_prob >= SURE_TYPE) & ((scores > 0) & of_type).any(dim=-1)
    best_of_type = (scores * of_type).amax(dim=-1, keepdim=True)
    below = torch.minimum(scores, best_of_type) * node_weight  # other types: under the best of the asked one
    return torch.where(applies.unsqueeze(1), below, scores)


READER_TEMPERATURE = 2.0  # the relation reader's odds are taken to this root where the type head votes


def _typed_relations(relation_probs: list[torch.Tensor], hop_probs: torch.Tensor,
                     type_logits: torch.Tensor, slot_types: torch.Tensor) -> list[torch.Tensor]:
    """Relation probabilities reweighted by whether each relation leads to the answer type the
    question asks for, as far as the question ends at that hop: ``(1 − q_t) · p_t(s) + q_t ·
    p̃_t(s) · fit(s)``, renormalised, q_t the probability of stopping after hop t and ``p̃_t``
    the reader's reading with its odds softened (:data:`READER_TEMPERATURE`).

    The relation reader reads words ("part of" → subregion) while the answer-type head reads
    the whole sentence ("which continent is X part of" asks for a region): two readings that
    err apart vote together. Only when answering: as a vote on trained models it helped both
    models measured and hurt no kind; trained through it (two runs on the countries KG), the
    reader may leave what types tell apart to the type head, whose slips then decide alone
    (held-out text subregion questions fell to 87 and 55 %, against 94 % without).

    Why softened: trained to near-certainty on the generator's wordings, the reader gives a
    wording it never saw odds of 10³–10⁴ as readily as one it did ("which continent is this
    flag's country part of": subregion at 0.9996), so in a plain product its odds outweigh
    the type head's every time they disagree, however sure the head (0.96 for a region). With
    the odds square-rooted, a head that is sure outvotes a reader that is not far surer, and
    an unsure head (0.6) still leaves the reader's reading. Five countries models
    (docs/results.md), the benchmark's held-out wordings: image 89.18 → 90.93 %, text 92.13 →
    93.52 % on average, four models better and one a little worse, the gain all in the region
    kinds; the 549 hand-written phrasings 99.18 → 99.10 % on average (a type head sure that
    "which countries surround Portugal" asks for a region now wins); the fourth root gained
    more on the benchmark and lost 1.0 point there on three models."""
    fit = type_weight(type_logits) @ slot_types.T.to(type_logits.dtype)  # [B, num_slots]
    probs = torch.stack(relation_probs, dim=1)  # [B, hops, num_slots]
    softened = torch.softmax(probs.clamp(min=1e-30).log() / READER_TEMPERATURE, dim=-1)
    ends = hop_probs[:, 1:len(relation_probs) + 1].unsqueeze(-1)
    weighted = (1.0 - ends) * probs + ends * softened * fit.unsqueeze(1)
    return list((weighted / weighted.sum(-1, keepdim=True).clamp(min=1e-12)).unbind(1))


def _typed_hops(hop_probs: torch.Tensor, hops: list[Sparse], type_logits: torch.Tensor,
                node_type: torch.Tensor) -> torch.Tensor:
    """Hop-count probabilities reweighted by how well each hop's answers fit the answer type
    the question asks for. The relations of "which currency is used in the countries next to
    X" may be read right (borders, then currency) while the hop count, misled by "countries
    next to", stops after one hop: its answers are countries, not currencies."""
    weight = type_weight(type_logits)
    size, count = hop_probs.shape
    both, hop = stack_hops(hops)
    cell = both.batch * count + hop  # (question, hop)
    fit = weight[both.batch, node_type[both.node]]
    mass = torch.zeros(size * count, dtype=hop_probs.dtype, device=hop_probs.device).index_add(0, cell, both.value)
    fitting = torch.zeros_like(mass).index_add(0, cell, both.value * fit)
    columns = (fitting / mass.clamp(min=1e-9)).view(size, count)  # 0 where a hop reached nothing
    weighted = hop_probs * columns
    total = weighted.sum(-1, keepdim=True)
    return torch.where(total > 0, weighted / total.clamp(min=1e-12), hop_probs)


def _scale(sparse: Sparse, weight: torch.Tensor) -> Sparse:
    if len(sparse.batch) == 0:
        return sparse
    if weight.dim() == 0:
        return Sparse(sparse.batch, sparse.node, sparse.value * weight)
    return Sparse(sparse.batch, sparse.node, sparse.value * weight[sparse.batch])


def _concat(a: Sparse, b: Sparse) -> Sparse:
    if len(b.batch) == 0:
        return a
    if len(a.batch) == 0:
        return b
    return Sparse(torch.cat([a.batch, b.batch]), torch.cat([a.node, b.node]), torch.cat([a.value, b.value]))


def picture_probs(logits: torch.Tensor, nodes: torch.Tensor, knowledge: KnowledgeTensors) -> torch.Tensor:
    """[B, E] the probability that a picture shows each image entity (``logits``: [B, E + 1]
    from :meth:`QAModel.link_image`, the last column "none of these").

    Entities whose pictures look the same (France and the territories that fly its flag) pool
    their probability, and it goes by ``knowledge.picture_share`` (to the member with the most
    facts), as an ambiguous name's best-connected entity comes first: the recogniser cannot
    tell them apart and learns an arbitrary split, and a photo of the French flag was answered
    about Guadeloupe ("what is the capital of this country": Basse-Terre, at 0.13)."""
    probs = torch.softmax(logits, dim=-1)[:, :-1]
    if knowledge.picture_group is None or knowledge.picture_share is None or not knowledge.picture_groups:
        return probs
    group = knowledge.picture_group[nodes]
    shared = group >= 0
    total = torch.zeros(probs.shape[0], knowledge.picture_groups, dtype=probs.dtype, device=probs.device)
    total = total.index_add(1, group[shared], probs[:, shared])
    share = knowledge.picture_share[nodes].to(probs.dtype)
    return torch.where(shared, total[:, group.clamp(min=0)] * share, probs)


def _image_topic(logits: torch.Tensor | None, nodes: torch.Tensor | None,
                 present: torch.Tensor | None, k: int, knowledge: KnowledgeTensors) -> Sparse:
    """Top-k image-linked entities per question with their probabilities (:func:`picture_probs`;
    the probability of "no entity shown" flows nowhere)."""
    if logits is None or nodes is None:
        return Sparse.empty(logits.device if logits is not None else "cpu")
    probs = picture_probs(logits, nodes, knowledge)
    k = min(k, probs.shape[1])
    values, index = probs.topk(k, dim=-1)
    batch = torch.arange(probs.shape[0], device=probs.device).unsqueeze(-1).expand(-1, k)
    keep = torch.ones_like(values, dtype=torch.bool)
    if present is not None:
        keep &= present.unsqueeze(-1)
    return Sparse(batch[keep], nodes[index[keep]], values[keep])
