"""Answer stage: a trained model, its KG and encoders, put together to answer questions with
evidence; plus training (:func:`train_model`) and evaluation (:func:`evaluate_model`).

A model folder holds ``model.safetensors`` (weights, never pickled), ``config.json`` (the
encoders, fusion, KG name, version and relation fingerprint it was trained with, and its
metrics), ``history.json`` and ``curves.png``. Using a model with another KG or encoder is
refused with a message that says what to do instead.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from kqa.device import default_device
from kqa.encode import Encoder, TextEncoder, get_encoder
from kqa.errors import KqaError, ModelMismatchError, NotFoundError
from kqa.familiar import Familiarity, capped_confidence, wording
from kqa.graph import KGraph, load_graph, type_name
from kqa.index import open_index, relation_texts
from kqa.link import BRACKET, Candidate, Linker, Span, get_linker, join_compounds, strip_brackets
from kqa.model import Batch, KnowledgeTensors, ModelConfig, QAModel, picture_probs, type_weight
from kqa.questions import Question, read_questions
from kqa.retrieve import Propagator, Sparse
from kqa.spell import Speller, name_words, vocabulary
from kqa.training import (
    EvalResult, Example, Trainer, TrainConfig, check_trainable, collate, encode_examples,
    make_examples, rank_metrics, save_history_plot, seed_everything, split_validation, summarise,
    topic_from_candidates, topic_sparse, write_json,
)

Progress = Callable[[str, int, int], None]
FORMAT_VERSION = 1
LOW_CONFIDENCE = 0.3


def relation_fingerprint(graph: KGraph) -> str:
    return hashlib.sha1("\n".join(graph.relation_keys).encode()).hexdigest()[:16]


def build_knowledge(graph: KGraph, text: TextEncoder, image_ref: str | None,
                    device: torch.device) -> KnowledgeTensors:
    """The per-KG tensors the model reads (name vectors come from the entity index)."""
    relation_text = torch.from_numpy(text.encode(relation_texts(graph)))
    entities = open_index(graph.name, "entities", text.name)
    node_text = torch.zeros(graph.num_nodes, text.dim, dtype=torch.float16)
    if entities is not None:
        seen = np.zeros(graph.num_nodes, dtype=bool)
        for row, node in enumerate(entities.targets.tolist()):
            if node >= 0 and not seen[node]:
                seen[node] = True
                node_text[node] = torch.from_numpy(entities.vectors[row])
    slots = 2 * graph.num_relations
    counts = np.zeros((graph.num_nodes, slots), dtype=np.float32)
    np.add.at(counts, (graph.src, graph.rel), 1.0)
    np.add.at(counts, (graph.dst, graph.rel + graph.num_relations), 1.0)
    node_slots = torch.from_numpy(np.log1p(counts) / np.maximum(np.log1p(counts).sum(1, keepdims=True), 1e-9))
    bank = bank_node = None
    if image_ref is not None:
        images = open_index(graph.name, "images", image_ref)
        if images is not None:
            keep = images.targets >= 0
            bank = torch.from_numpy(images.vectors[keep].astype(np.float32))
            bank_node = torch.from_numpy(images.targets[keep])
    node_type, type_text = _node_types(graph, text)
    slot_types = _slot_types(graph, node_type) if node_type is not None else None
    group, share, groups = _picture_groups(graph) if image_ref is not None else (None, None, 0)

    def put(tensor: torch.Tensor | None) -> torch.Tensor | None:
        return tensor.to(device) if tensor is not None else None
    return KnowledgeTensors(relation_text.to(device), node_text.to(device), node_slots.to(device),
                            put(bank), put(bank_node), put(node_type), put(type_text), put(slot_types),
                            put(group), put(share), groups)


def _picture_groups(graph: KGraph) -> tuple[torch.Tensor | None, torch.Tensor | None, int]:
    """Per node, its group of entities whose pictures look the same (-1: a picture of its own)
    and its share of the group's picture (:func:`kqa.model.picture_probs`): all of it for the
    member with the most facts, none for the others; (None, None, 0) where no two pictures look
    the same. Shares in proportion to the facts were tried: the French flag's five American
    territories then outweighed France (25 facts against 32), and "which continent is this
    country in" was answered "Americas" for a photo of the French flag."""
    from kqa.recognise import lookalikes

    groups = sorted({tuple(sorted(same)) for same in lookalikes(graph).values() if len(same) > 1}) \
        if graph.images else []
    if not groups:
        return None, None, 0
    degree = graph.degree().astype(np.float64)
    group = torch.full((graph.num_nodes,), -1, dtype=torch.long)
    share = torch.ones(graph.num_nodes)
    for g, members in enumerate(groups):
        group[list(members)] = g
        share[list(members)] = 0.0
        share[members[int(np.argmax(degree[list(members)]))]] = 1.0  # ties: the lowest node
    return group, share, len(groups)


def _slot_types(graph: KGraph, node_type: torch.Tensor) -> torch.Tensor:
    """[2R, K]: for each relation slot, the share of the nodes it leads to that are of each
    type (slot r reaches the objects of relation r, slot R + r its subjects)."""
    count, kinds = graph.num_relations, int(node_type.max()) + 1
    tails = torch.from_numpy(np.concatenate([graph.dst, graph.src]).astype(np.int64))
    slots = torch.from_numpy(np.concatenate([graph.rel, graph.rel + count]).astype(np.int64))
    table = torch.zeros(2 * count, kinds).index_put_((slots, node_type[tails]), torch.ones(len(tails)),
                                                     accumulate=True)
    return table / table.sum(-1, keepdim=True).clamp(min=1.0)


def answer_type_names(graph: KGraph) -> list[str]:
    """The KG's node types as words, in a fixed order (the model's answer-type vocabulary)."""
    return sorted({type_name(t) for t in graph.node_types})


def _node_types(graph: KGraph, text: TextEncoder) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Each node's type index and the type names' text vectors; (None, None) for a KG whose
    nodes are all of one type (MetaQA's): no type can then tell answers apart."""
    names = answer_type_names(graph)
    if len(names) < 2:
        return None, None
    index = {name: i for i, name in enumerate(names)}
    node_type = torch.tensor([index[type_name(t)] for t in graph.node_types], dtype=torch.long)
    return node_type, torch.from_numpy(text.encode(names))


def encode_images(examples: Sequence[Example], encoder: Any, progress: Progress | None = None) -> None:
    """Image features for examples that carry an image (a path or a PIL image); each distinct
    image is encoded once even when several questions share it. ``encoder``: an image
    :class:`~kqa.encode.Encoder` or a :class:`~kqa.recognise.Recogniser` (same interface)."""
    groups: dict[Any, list[Example]] = {}
    for e in examples:
        if e.image is not None and e.image_feature is None:
            key = str(e.image) if isinstance(e.image, (str, Path)) else id(e.image)
            groups.setdefault(key, []).append(e)
    keys = list(groups)
    size = encoder.batch_size
    for start in range(0, len(keys), size):
        chunk = keys[start:start + size]
        vectors = encoder.encode_batch([groups[k][0].image for k in chunk])
        for key, vector in zip(chunk, vectors):
            feature = torch.from_numpy(vector).to(torch.float16)
            for e in groups[key]:
                e.image_feature = feature
        if progress:
            progress("images", min(start + size, len(keys)), len(keys))


# -- mention scoring with a trained model ----------------------------------------------------------
def span_score(offsets: Sequence[tuple[int, int]], probs: Sequence[float], start: int, end: int,
               question: str = "") -> float:
    """Mean "inside a mention" probability over the span's tokens, discounted when the
    neighbouring tokens look like mention too (the span would be cut short).

    Function words in the span ("in", "the" of "Splendor in the Grass") are left out of
    the mean: a tagger trained on a few thousand titles is unsure of them, and counting them
    would let "Splendor" alone beat the whole title."""
    inside, before, after = [], 0.0, 0.0
    for (a, b), p in zip(offsets, probs):
        if b <= a:
            continue
        if a < end and b > start:
            if (a, b) != (start, end) and _function_word(question, a, b):
                continue
            inside.append(p)
        elif b <= start:
            before = p
        elif a >= end and after == 0.0:
            after = p if p > 0 else 1e-9
    if not inside:
        return 0.0
    return float(np.mean(inside)) * (1.0 - max(before, after))


FUNCTION_WORDS = frozenset("a about an and as at by de del der des di du for from in into is la le les "
                           "of on or over the to und under von with".split())


def _function_word(question: str, a: int, b: int) -> bool:
    """Whether question[a:b] is a whole function word (any case: "The Skulls")."""
    if not question:
        return False
    whole = (a == 0 or not question[a - 1].isalnum()) and (b == len(question) or not question[b].isalnum())
    return whole and question[a:b].lower() in FUNCTION_WORDS


class TokenMentionScorer:
    """Scores alias spans with a model's per-token mention probabilities for one question."""

    def __init__(self, offsets: Sequence[tuple[int, int]], probs: Sequence[float]) -> None:
        self.offsets, self.probs = list(offsets), list(probs)

    def score(self, question: str, spans: Sequence[Span], graph: KGraph) -> list[float]:
        return [1.0 if s.bracketed else span_score(self.offsets, self.probs, s.start, s.end, question)
                for s in spans]


class LearnedMentionScorer:
    """A :class:`kqa.link.MentionScorer` backed by a trained model (encodes the question)."""

    def __init__(self, answerer: "Answerer") -> None:
        self.answerer = answerer

    def score(self, question: str, spans: Sequence[Span], graph: KGraph) -> list[float]:
        offsets, probs = self.answerer.mention_probs(question)
        return TokenMentionScorer(offsets, probs).score(question, spans, graph)


# -- results -----------------------------------------------------------------------------------
@dataclass
class Answer:
    name: str
    node: int
    score: float
    hop: int
    evidence: list[list[dict[str, str]]]  # paths; each a list of stored triples

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "score": round(self.score, 4), "hops": self.hop,
                "evidence": self.evidence}


@dataclass
class AnswerResult:
    question: str
    answers: list[Answer]
    confidence: float
    topic: list[dict[str, Any]]
    image_topic: list[dict[str, Any]]
    modalities: dict[str, float]
    topic_from_text: float
    relations: list[list[tuple[str, float]]]
    hop_probs: list[float]
    message: str = ""
    seconds: float = 0.0
    answer_type: list[tuple[str, float]] = field(default_factory=list)  # the asked-for types
    familiarity: float | None = None  # the nearest training wording's cosine (kqa.familiar)
    nothing_shown: float | None = None  # with a picture: the probability it shows no known entity

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["answers"] = [a.as_dict() for a in self.answers]
        data["confidence"] = round(self.confidence, 4)
        return data


def type_fit(type_logits: torch.Tensor | None, answer_type: int | None) -> float:
    """How far the best answer's type is what the question asks for: 1 for the type the
    answer-type head reads, its odds against that type otherwise (:func:`kqa.model.type_weight`);
    1 where the KG has one type. The answer's score alone comes from the relation reader and
    the hop count, which a phrasing unlike the training ones can mislead together ("which
    continent is X part of" read as X's subregion at 0.96) while the type head reads the
    question right (a region, 0.99): their product is the confidence, so such an answer says
    it is unsure instead of being confidently wrong."""
    if type_logits is None or answer_type is None:
        return 1.0
    return float(type_weight(type_logits.unsqueeze(0))[0, answer_type])


def fact_share(contributions: Sequence[float], with_image: bool) -> float:
    """The share of an answer's score carried by facts of the KG (hops 1 and more), for a
    question asked in words only. Hop 0 answers "which entity is this?": for a picture that is
    the recognition, but for a question in words it returns the entity the question names.
    Training never asks so in words, yet a question about something the KG does not hold ("who
    is the president of France") can be read that way, and "France" is then no answer: its
    confidence is what facts support, none. 1 for a question with an image."""
    total = float(sum(contributions))
    if with_image or total <= 0.0:
        return 1.0
    return float(sum(contributions[1:])) / total


def top_reached(scores: torch.Tensor, hops: Sequence[Sparse], k: int) -> tuple[list[float], list[int]]:
    """The ``k`` best (score, node) pairs of one question's dense scores [N]. Only nodes that
    some hop reached can score above zero, so only those are ranked: a top-k over all of a
    43k-node KG was a tenth of ``ask``'s own time. Equal scores are ranked by node, lowest
    first, as evaluation's ``argmax`` ranks them: ``topk`` orders ties as it happens to, and
    the first answer to a MetaQA question about two films of one title (their casts score the
    same) changed with ``k``."""
    reached = torch.unique(torch.cat([hop.node[hop.batch == 0] for hop in hops]))
    if reached.numel() == 0:
        return [], []
    values = scores[reached]
    order = torch.sort(values, descending=True, stable=True).indices[:k]
    return values[order].tolist(), reached[order].tolist()


# -- the answerer ---------------------------------------------------------------------------------
class Answerer:
    """A loaded model bound to its KG; thread-safe for concurrent questions."""

    def __init__(self, kg_name: str, folder: Path, device: torch.device | None = None) -> None:
        self.folder = Path(folder)
        config_path = self.folder / "config.json"
        if not config_path.is_file():
            raise NotFoundError(f"no trained model at {self.folder} (train one with kqa train --kg {kg_name})")
        self.meta = json.loads(config_path.read_text(encoding="utf-8"))
        self.graph = load_graph(kg_name)
        self._check_kg(kg_name)
        self.device = device or default_device()
        self.text = get_encoder(self.meta["encoders"]["text"]["ref"], "text")
        _check_encoder(self.text, self.meta["encoders"]["text"], self.folder)
        image_meta = self.meta["encoders"].get("image")
        self.image: Encoder | None = None
        if image_meta:
            self.image = get_encoder(image_meta["ref"], "image")
            _check_encoder(self.image, image_meta, self.folder)
        self.config = ModelConfig(**self.meta["model"])
        self.model = build_model(self.config, self.image)
        state = load_file(str(self.folder / "model.safetensors"), device="cpu")
        self.model.load_state_dict(state)
        self.model.to(self.device).eval()
        # what turns a picture into the model's image feature: its recogniser, or the encoder
        self.image_features: Any = self.image
        if self.model.recogniser is not None:
            from kqa.recognise import recogniser_rows

            keys = self.meta.get("recogniser", {}).get("entities", [])
            self.model.recogniser.entity_nodes.copy_(recogniser_rows(self.graph, keys).to(self.device))
            self.image_features = self.model.recogniser
        self.propagator = Propagator(self.graph, self.meta.get("hub_degree"), self.device)
        self.knowledge = build_knowledge(self.graph, self.text,  # type: ignore[arg-type]
                                         image_meta["ref"] if image_meta else None, self.device)
        self.linker: Linker = get_linker(kg_name)
        self.type_names = answer_type_names(self.graph)  # the answer-type head's vocabulary
        self.familiarity = Familiarity.load(self.folder, self.meta.get("familiarity"))
        words = self.meta.get("vocabulary")  # None: a model saved before spelling was read
        self.speller = Speller([*words, *self.graph.schema_words], name_words(self.linker.aliases.keys)) \
            if words else None
        self.lock = threading.Lock()

    def _check_kg(self, kg_name: str) -> None:
        kg_meta = self.meta["kg"]
        if kg_meta["name"] != kg_name:
            raise ModelMismatchError(
                f"the model at {self.folder} was trained for KG {kg_meta['name']!r}, not {kg_name!r}; "
                f"fine-tune it for this KG with: kqa train --kg {kg_name} --init {self.folder} ...")
        if kg_meta["relation_fingerprint"] != relation_fingerprint(self.graph):
            raise ModelMismatchError(
                f"KG {kg_name!r} has different relations than when the model at {self.folder} was "
                f"trained (it was trained on KG version {kg_meta['version']}); retrain or fine-tune it "
                f"with --init")

    def mention_scorer(self) -> LearnedMentionScorer:
        return LearnedMentionScorer(self)

    @torch.inference_mode()
    def mention_probs(self, question: str) -> tuple[list[tuple[int, int]], list[float]]:
        clean, _ = strip_brackets(question)  # the text the linker's spans are on
        states = self.text.encode_tokens([clean])  # type: ignore[attr-defined]
        batch = Batch(states.states.to(self.device), states.mask.bool().to(self.device),
                      states.pooled.to(self.device), Sparse.empty(self.device))
        _tokens, logits = self.model.encode_tokens(batch)
        return states.offsets[0], torch.sigmoid(logits[0]).tolist()

    @torch.inference_mode()
    def image_candidates(self, image: Any, top_k: int = 5) -> list[Candidate]:
        """Entities shown in a picture, by the model's learned image matching (far better
        than raw nearest neighbours on real photos); [] for a model without images."""
        if self.image_features is None:
            return []
        example = Example("", [], [])
        example.image_feature = torch.from_numpy(self.image_features.encode_batch([image])[0])
        batch = Batch(torch.zeros(1, 1, self.config.text_dim, device=self.device),
                      torch.ones(1, 1, dtype=torch.bool, device=self.device),
                      torch.zeros(1, self.config.text_dim, device=self.device), Sparse.empty(self.device),
                      example.image_feature.float().unsqueeze(0).to(self.device),
                      torch.ones(1, dtype=torch.bool, device=self.device))
        logits, nodes = self.model.link_image(batch, self.knowledge)
        if logits is None or nodes is None:
            return []
        probs = picture_probs(logits, nodes, self.knowledge)[0]
        top = probs.topk(min(top_k, probs.numel()))
        return [Candidate(int(nodes[i]), self.graph.label(int(nodes[i])), float(v), "image")
                for v, i in zip(top.values.tolist(), top.indices.tolist())]

    # -- asking ----------------------------------------------------------------------------
    def read(self, question: str) -> str:
        """The question as the model reads it: hyphenated schema words joined ("sub-region"),
        and words that neither English nor the model knows corrected (:mod:`kqa.spell`);
        names in ``[brackets]`` untouched. Asking and evaluating both read through it."""
        question = join_compounds(question, self.graph.schema_words)
        if self.speller is None:
            return question
        return self.speller.correct(question, [m.span() for m in BRACKET.finditer(question)])

    @torch.inference_mode()
    def ask(self, question: str, image: Any = None, top_k: int = 5) -> AnswerResult:
        started = time.perf_counter()
        question = self.read(question)
        clean, _hints = strip_brackets(question)
        if not clean.strip():
            raise KqaError("the question is empty")
        example = Example(clean, [], [])
        with self.lock:
            states = self.text.encode_tokens([clean])  # type: ignore[attr-defined]
            example.states = states.states[0].to("cpu", torch.float16)
            example.pooled = states.pooled[0].to("cpu")
            example.offsets = states.offsets[0]
            if image is not None:
                if self.image is None:
                    raise KqaError("this model was trained without images: ask without an image, or "
                                   "train a model on questions with images")
                example.image_feature = torch.from_numpy(self.image_features.encode_batch([image])[0])
            batch = collate([example], self.device, self.config.image_dim)
            encoded = self.model.encode_tokens(batch)
            scorer = TokenMentionScorer(example.offsets, torch.sigmoid(encoded[1][0]).tolist())
            linked = self.linker.link(question, top_k=5, scorer=scorer)
            batch.topic_text = topic_sparse([topic_from_candidates(linked.candidates)], self.device)
            out = self.model(batch, self.knowledge, self.propagator, encoded=encoded)
        familiar = self._familiarity(example, linked.candidates)
        return self._result(clean, linked.candidates, out, top_k, time.perf_counter() - started,
                            image is not None, familiar)

    def _familiarity(self, example: Example, candidates: list[Candidate]) -> float | None:
        """How close the question's wording, its topic mention left out, is to a training
        question's (:mod:`kqa.familiar`); None for a model saved without a bank."""
        if self.familiarity is None:
            return None
        mention = [candidates[0].span] if candidates and candidates[0].span else []
        return self.familiarity.score(wording(example.states, example.offsets, mention))

    def _result(self, clean: str, candidates: list[Candidate], out: Any, top_k: int,
                seconds: float, with_image: bool, familiar: float | None = None) -> AnswerResult:
        values, nodes = top_reached(out.scores[0], out.hops, top_k)
        hop_probs = out.hop_probs[0].tolist()
        hops = [h.to_dict(0) for h in out.hops]
        probs = [p[0].cpu().numpy() for p in out.relation_probs]
        answers, supported = [], 1.0
        for value, node in zip(values, nodes):
            if value <= 1e-4:
                break
            contributions = [hop_probs[t] * hops[t].get(node, 0.0) for t in range(len(hops))]
            hop = int(np.argmax(contributions))
            paths = self.propagator.backtrack(hops, probs, node, hop)
            if not answers:
                supported = fact_share(contributions, with_image)
            answers.append(Answer(self.graph.label(node), node, value, hop,
                                  [self._path_triples(path) for path in paths]))
        typed = answers and out.type_logits is not None and self.knowledge.node_type is not None
        best_type = int(self.knowledge.node_type[answers[0].node]) if typed else None  # type: ignore[index]
        type_logits = out.type_logits[0] if typed else None
        fit = type_fit(type_logits, best_type)
        confidence = answers[0].score * fit * supported if answers else 0.0
        line = self.familiarity.threshold if self.familiarity is not None else 0.0
        unfamiliar = familiar is not None and familiar < line
        if unfamiliar:
            confidence = capped_confidence(confidence, familiar, line, LOW_CONFIDENCE)  # type: ignore[arg-type]
        image_topic, nothing_shown = [], None
        if with_image and out.image_logits is not None and out.image_nodes is not None:
            nothing_shown = float(torch.softmax(out.image_logits[0].float(), -1)[-1])
            p = picture_probs(out.image_logits, out.image_nodes, self.knowledge)[0]
            top = p.topk(min(5, p.numel()))
            image_topic = [{"name": self.graph.label(int(out.image_nodes[i])), "score": round(float(v), 4),
                            "source": "image"} for v, i in zip(top.values.tolist(), top.indices.tolist())]
        message = ""
        shows_nothing = (f"the picture seems to show none of the entities this model knows pictures of "
                         f"(none of these: {nothing_shown:.2f})"
                         if nothing_shown is not None and nothing_shown >= 0.5 else "")
        if not answers and shows_nothing:
            message = f"No answer found: {shows_nothing}."
        elif not answers:
            message = "No answer found: no entity of the KG was recognised in the question or image."
        elif unfamiliar:
            message = (f"Low confidence ({confidence:.2f}): the question is worded unlike any this model "
                       f"was trained on (familiarity {familiar:.2f}, below its line {line:.2f}); the KG "
                       f"may not hold what is asked.")
        elif confidence < LOW_CONFIDENCE and shows_nothing:
            message = f"Low confidence ({confidence:.2f}): {shows_nothing}."
        elif confidence < LOW_CONFIDENCE <= answers[0].score * fit:
            message = (f"Low confidence ({confidence:.2f}): the best answer is the entity the question "
                       f"names, reached through no fact of the KG; the KG may not hold what is asked.")
        elif confidence < LOW_CONFIDENCE <= answers[0].score * supported:
            asked = self.type_names[int(type_logits.argmax())]  # type: ignore[union-attr]
            message = (f"Low confidence ({confidence:.2f}): the best answer is of type "
                       f"'{self.type_names[best_type]}', but the question seems to ask for '{asked}': "  # type: ignore[index]
                       f"check the evidence.")
        elif confidence < LOW_CONFIDENCE and (overruled := self._overruled(out, answers[0].node)) is not None:
            asked = self.type_names[int(type_logits.argmax())]  # type: ignore[union-attr]
            read = self.type_names[int(self.knowledge.node_type[overruled])]  # type: ignore[index]
            message = (f"Low confidence ({confidence:.2f}): the wording reads most like a question whose "
                       f"answer is a '{read}' ({self.graph.label(overruled)}), but it seems to ask for a "
                       f"'{asked}': answers of that type come first; check the evidence.")
        elif confidence < LOW_CONFIDENCE:
            message = (f"Low confidence ({confidence:.2f}): the question or image may not be about "
                       f"anything in this KG.")
        modalities = dict(zip(self.model.fusion.modalities, out.shares[0].tolist()))
        relation_names = [self._slot_label(s) for s in range(self.config.num_slots)]
        relations = []
        for t, p in enumerate(probs):
            order = np.argsort(-p)[:3]
            relations.append([(relation_names[i], round(float(p[i]), 4)) for i in order])
        answer_type = []
        if out.type_logits is not None:
            names = self.type_names
            p = torch.softmax(out.type_logits[0], -1)
            top = p.topk(min(3, p.numel()))
            answer_type = [(names[i], round(float(v), 4)) for v, i in zip(top.values.tolist(), top.indices.tolist())]
        return AnswerResult(clean, answers, confidence, [c.as_dict() for c in candidates], image_topic,
                            {k: round(v, 4) for k, v in modalities.items()}, round(float(out.text_gate[0]), 4),
                            relations, [round(p, 4) for p in hop_probs], message, seconds, answer_type,
                            None if familiar is None else round(familiar, 4),
                            None if nothing_shown is None else round(nothing_shown, 4))

    def _overruled(self, out: Any, best: int) -> int | None:
        """The answer ranked first before the answer-type head reweighed the hop counts and the
        answers (:func:`kqa.model._typed_hops`, :func:`kqa.model._typed_answers`), where that
        put ``best``, an answer of another type, first; None where it did not."""
        untyped = out.extras.get("untyped_hop_probs")
        if untyped is None:
            return None
        _, nodes = top_reached(self.propagator.combine(out.hops, untyped[:1], 1)[0], out.hops, 1)
        node_type = self.knowledge.node_type
        if not nodes or node_type is None or node_type[nodes[0]] == node_type[best]:
            return None  # the same type: the hop count moved, not the type asked for
        return nodes[0]

    def _slot_label(self, slot: int) -> str:
        count = self.graph.num_relations
        return self.graph.relation_label(slot % count, inverse=slot >= count)

    def _path_triples(self, path: list[tuple[int, int, int]]) -> list[dict[str, str]]:
        """Each step as the stored fact it used (subject, relation, object)."""
        count = self.graph.num_relations
        triples = []
        for head, slot, tail in path:
            subject, obj = (head, tail) if slot < count else (tail, head)
            triples.append({"subject": self.graph.label(subject),
                            "relation": self.graph.relation_names[slot % count],
                            "object": self.graph.label(obj)})
        return triples

    # -- evaluating ------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, examples: list[Example], gold_topics: bool, batch_size: int = 128) -> EvalResult:
        """Hits@1 and MRR; without gold topics, entities are linked with the model's tagger."""
        self.model.eval()
        pairs: list[tuple[float, float]] = []
        for start in range(0, len(examples), batch_size):
            chunk = examples[start:start + batch_size]
            if not gold_topics:
                self._link_batch(chunk)
            out = self.model(collate(chunk, self.device, self.config.image_dim), self.knowledge,
                             self.propagator)
            pairs.extend(rank_metrics(out.scores, chunk))
        return summarise(pairs, examples)

    def _link_batch(self, chunk: Sequence[Example]) -> None:
        batch = collate(chunk, self.device, self.config.image_dim)
        _tokens, logits = self.model.encode_tokens(batch)
        probs = torch.sigmoid(logits).tolist()
        for row, e in enumerate(chunk):
            scorer = TokenMentionScorer(e.offsets, probs[row][:len(e.offsets)])
            e.topic = topic_from_candidates(self.linker.link(e.text, scorer=scorer).candidates)


def _check_encoder(encoder: Encoder, recorded: dict[str, Any], folder: Path) -> None:
    for key in ("name", "version", "dim"):
        if recorded.get(key) != encoder.identity[key]:
            raise ModelMismatchError(
                f"the model at {folder} was trained with {recorded['modality']} encoder "
                f"{recorded.get('name')} {recorded.get('version')} ({recorded.get('dim')}-d), but "
                f"{encoder.name} {encoder.version} ({encoder.dim}-d) is installed; retrain the model")


def build_model(config: ModelConfig, image: Encoder | None = None, recogniser: Any = None) -> QAModel:
    """The module for ``config``; a model with a recogniser takes a trained one, or builds an
    untrained one (to load weights into) from its image encoder, whose network it copies."""
    from kqa.plugins import get_plugins

    dims = {"text": config.text_dim, "kg": config.text_dim + config.hidden}
    if config.image_dim:
        dims["image"] = config.image_dim
    fusion = get_plugins().fusion(config.fusion).factory(dims, config.hidden)
    if config.recognise and recogniser is None:
        from kqa.recognise import RecogniseConfig, build_recogniser

        if image is None:
            raise KqaError("this model recognises entities in images: its image encoder is needed")
        recogniser = build_recogniser(image, config.recognise_entities,
                                      RecogniseConfig(size=config.recognise_size, dim=config.image_dim))
        if recogniser is None:
            raise ModelMismatchError(f"image encoder {image.name} cannot be fine-tuned, but this model's "
                                     f"recogniser was; retrain the model")
    return QAModel(config, fusion, recogniser)


_answerers: dict[tuple[str, str, float], Answerer] = {}
_answerers_lock = threading.Lock()


def load_answerer(kg_name: str, folder: str | Path) -> Answerer:
    """A cached :class:`Answerer` (reloaded when the weights file or the KG changes)."""
    folder = Path(folder).resolve()
    weights = folder / "model.safetensors"
    stamp = weights.stat().st_mtime if weights.exists() else 0.0
    key = (kg_name, str(folder), stamp)
    with _answerers_lock:
        cached = _answerers.get(key)
        if cached is not None and cached.graph is load_graph(kg_name):
            return cached
        answerer = Answerer(kg_name, folder)
        _answerers[key] = answerer
        return answerer


def clear_answerers() -> None:
    with _answerers_lock:
        _answerers.clear()


# -- training -----------------------------------------------------------------------------------
@dataclass
class TrainReport:
    model_dir: str
    examples: int
    train: int
    validation: int
    val_hits1: float
    epochs: int
    seconds: float
    encode_seconds: float
    stats: dict[str, int] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def judged_on(self) -> str:
        """What ``val_hits1`` was measured on, in words for the front ends: validation
        questions, or without any a sample of the training questions."""
        return "validation" if self.validation else "training-sample"


def train_model(kg_name: str, questions: list[Question], out: Path, *args: Any,
                config: TrainConfig | None = None, **kwargs: Any) -> TrainReport:
    """:func:`_train_model`; with ``config.deterministic`` on one CPU thread, because the
    2-thread kernels sum in a varying order: the same seed then gave models that differed from
    the first epoch on (validation Hits@1 0.906 / 0.962 / 0.915 in three runs on the countries
    KG), and one thread gives bit-identical ones, about 1.5× slower. On CUDA it also asks
    torch for its deterministic kernels: sums into shared rows (``index_add``) use atomic adds
    there by default, and two runs of the same seed on an H200 gave different weights."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    if config is not None and config.deterministic:
        torch.set_num_threads(1)
        torch.use_deterministic_algorithms(True, warn_only=True)  # CPU kernels are unaffected
    try:
        return _train_model(kg_name, questions, out, *args, config=config, **kwargs)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def _train_model(kg_name: str, questions: list[Question], out: Path, fusion: str = "gated",
                init: Path | None = None, config: TrainConfig | None = None,
                text_encoder: str | None = None, image_encoder: str | None = None,
                hidden: int = 256, max_hops: int = 3, progress: Progress | None = None,
                log: Callable[[dict[str, Any]], None] | None = None,
                extra_examples: list[Example] | None = None,
                recognise: dict[str, Any] | bool = True,
                recogniser_from: Path | None = None) -> TrainReport:
    """Train (or fine-tune, with ``init``) a model for a KG and save it to ``out``.

    With pictures in the training questions and an image encoder that can be fine-tuned, a
    recogniser of the KG's entity images is trained first (:mod:`kqa.recognise`;
    ``recognise``: its :class:`~kqa.recognise.RecogniseConfig` fields, or False for none), or
    taken from the model at ``recogniser_from``; the answer model then reads its embeddings as
    the image feature. ``extra_examples``: questions generated from the KG (:mod:`kqa.generate`),
    trained on beside ``questions``; the config counts them (``data.generated``: a model that
    read the generator's wordings passes its reading on, :func:`not_passed_on`)."""
    config = config or TrainConfig()
    seed_everything(config.seed)
    started = time.perf_counter()
    device = default_device()
    graph = load_graph(kg_name)
    linker = get_linker(kg_name)
    init_meta = None
    if init is not None:
        init_meta = json.loads((Path(init) / "config.json").read_text(encoding="utf-8"))
        text_encoder = text_encoder or init_meta["encoders"]["text"]["ref"]
        fusion = init_meta["model"]["fusion"]
        hidden, max_hops = init_meta["model"]["hidden"], init_meta["model"]["max_hops"]
        if image_encoder is None and init_meta["encoders"].get("image"):
            image_encoder = init_meta["encoders"]["image"]["ref"]
    text = get_encoder(text_encoder, "text")
    examples, stats = make_examples(questions, graph, linker, twins=True)
    examples.extend(extra_examples or [])
    check_trainable(examples)
    uses_images = any(e.image is not None for e in examples) or (
        image_encoder is not None and bool(graph.images))
    image = get_encoder(image_encoder, "image") if uses_images else None
    recognised = None
    if image is not None and recogniser_from is not None:
        from kqa.recognise import reuse_recogniser

        recognised = reuse_recogniser(graph, image, recogniser_from)
    elif image is not None and recognise is not False:
        from kqa.recognise import RecogniseConfig, train_recogniser

        options = recognise if isinstance(recognise, dict) else {}
        recognised = train_recogniser(graph, image, RecogniseConfig(**{"seed": config.seed, **options}),
                                      progress, log)
    recogniser = recognised[0] if recognised else None
    encode_examples(examples, text, progress=progress)  # type: ignore[arg-type]
    if image is not None:
        encode_images(examples, recogniser or image, progress)
    encode_seconds = time.perf_counter() - started
    typed = len(answer_type_names(graph)) > 1  # a KG of one type has no types to read
    model_config = ModelConfig(num_slots=2 * graph.num_relations, text_dim=text.dim,
                               image_dim=(recogniser.dim if recogniser else image.dim if image else 0),
                               hidden=hidden, max_hops=max_hops, fusion=fusion,
                               recognise=recogniser is not None,
                               answer_types=typed, typed_relations=typed,
                               recognise_size=recogniser.tower.size if recogniser else 0,
                               recognise_entities=len(recognised[1]) if recognised else 0)
    model = build_model(model_config, image, recogniser)
    if recogniser is not None:  # trained already; the answer model learns to use it
        recogniser.requires_grad_(False)
        if recognised[2].null_logit is not None:  # type: ignore[index]
            # where the recogniser learned to say "none of these", not a guess
            model.null_logit.data.fill_(recognised[2].null_logit)  # type: ignore[index]
    if init is not None:
        _load_init(model, Path(init), init_meta, model_config)  # type: ignore[arg-type]
    model.to(device)
    propagator = Propagator(graph, None, device)
    knowledge = build_knowledge(graph, text, image.name if image else None, device)  # type: ignore[arg-type]
    train, val = split_validation(examples, config.val_fraction, config.seed)
    familiarity = Familiarity.build(train, val, config.seed)
    words = vocabulary([e.text for e in train], [e.mention_spans for e in train])
    trainer = Trainer(model, knowledge, propagator, config, device, progress, log)
    summary = trainer.fit(train, val)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
              str(out / "model.safetensors"))
    encoders = {"text": {**text.identity, "ref": text.name}}
    if image is not None:
        encoders["image"] = {**image.identity, "ref": image.name}
    meta = {
        "format": FORMAT_VERSION,
        "created": datetime.now(timezone.utc).isoformat(),
        "kg": {"name": kg_name, "version": graph.version, "relation_fingerprint": relation_fingerprint(graph),
               "relations": graph.relation_keys},
        "encoders": encoders,
        "model": model_config.to_dict(),
        "hub_degree": propagator.hub_degree,
        "train": asdict(config),
        "init": str(init) if init else None,
        "data": {"examples": len(examples), "train": len(train), "validation": len(val),
                 "generated": len(extra_examples or []), **stats},
        # without validation questions the kept weights were judged on training questions
        "metrics": {("val_hits@1" if val else "probe_hits@1"): summary["best_val_hits@1"]},
        "vocabulary": words,
    }
    if familiarity is not None:
        meta["familiarity"] = familiarity.save(out)
    if recognised:
        _rec, nodes, rec_report = recognised
        meta["recogniser"] = {"entities": [graph.node_keys[n] for n in nodes],
                              "views": rec_report.views, "seconds": rec_report.seconds,
                              "val_accuracy": rec_report.val_accuracy, "history": rec_report.history,
                              "from": rec_report.source, "null_logit": rec_report.null_logit}
        meta["metrics"]["recognition_val_accuracy"] = rec_report.val_accuracy
    write_json(out / "config.json", meta)
    write_json(out / "history.json", trainer.history)
    if trainer.history:
        save_history_plot(trainer.history, out / "curves.png")
    clear_answerers()
    return TrainReport(str(out), len(examples), len(train), len(val), summary["best_val_hits@1"],
                       summary["epochs"], round(time.perf_counter() - started, 1), round(encode_seconds, 1),
                       stats, trainer.history)


# what a model trained on another KG does not pass on: its relation offsets are its KG's, its
# recogniser knows its KG's entities only, and its token transformer and mention tagger read its
# own training wordings (started from them, a model read a new domain's unseen wordings worse:
# countries 81.3 % against 86.9 % with them fresh, 3 seeds; docs/results.md)
# ... unless those wordings included the generator's (:mod:`kqa.generate`), which is what a new
# KG's generated training questions are made of: then they read the target's wordings too, and
# passing them on helped in every case measured (docs/results.md, "Fine-tuning across domains")
NOT_PASSED_ON_FROM_GENERATED = ("rel_offset", "recogniser.")
NOT_PASSED_ON = NOT_PASSED_ON_FROM_GENERATED + ("context.", "token_proj.", "mention_head.")


def not_passed_on(meta: dict[str, Any]) -> tuple[str, ...]:
    """The weights (name prefixes) that start fresh when fine-tuning from the model whose
    config is ``meta``: the token transformer and tagger are passed on only by a model trained
    on generated questions too (configs count them from the fifteenth session on; a model
    saved before keeps the old rule)."""
    return NOT_PASSED_ON_FROM_GENERATED if meta.get("data", {}).get("generated", 0) > 0 else NOT_PASSED_ON


def _load_init(model: QAModel, init: Path, meta: dict[str, Any], config: ModelConfig) -> None:
    """Start from another model: what reasons over a KG (the relation reader, hop counts,
    fusion, answer types) is copied where its shape fits, and what reads wordings where the
    other model read the generator's (:func:`not_passed_on`); the rest starts fresh."""
    if not (init / "model.safetensors").is_file():
        raise NotFoundError(f"no model weights at {init}")
    state = load_file(str(init / "model.safetensors"), device="cpu")
    own = model.state_dict()
    fresh = not_passed_on(meta)
    usable = {k: v for k, v in state.items()
              if k in own and own[k].shape == v.shape and not k.startswith(fresh)}
    model.load_state_dict(usable, strict=False)


def evaluate_model(kg_name: str, folder: Path, questions: list[Question], gold_topics: bool = True,
                   progress: Progress | None = None) -> EvalResult:
    answerer = load_answerer(kg_name, folder)
    questions = [replace(q, text=answerer.read(q.text)) for q in questions]  # as ask reads them
    examples, _stats = make_examples(questions, answerer.graph, answerer.linker, gold_topics=gold_topics)
    encode_examples(examples, answerer.text, progress=progress)  # type: ignore[arg-type]
    if answerer.image_features is not None:
        encode_images(examples, answerer.image_features, progress)
    lost = len(questions) - len(examples)
    result = answerer.evaluate(examples, gold_topics)
    if lost:  # questions whose answers are not in the KG count as misses
        scale = result.n / (result.n + lost)
        result = EvalResult(result.n + lost, result.hits1 * scale, result.mrr * scale, result.per_group)
    return result


def read_question_files(paths: Sequence[str | Path]) -> list[Question]:
    questions: list[Question] = []
    for path in paths:
        questions.extend(read_questions(path, require_answers=True))
    return questions
