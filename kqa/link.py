"""Link stage: find the topic entities of a question, from its text and from an image.

Text: every n-gram of the question is looked up in a normalised alias table (exact, case-,
accent- and punctuation-insensitive); matches are scored by a mention scorer (a heuristic
here, or the learned span tagger of a trained model) and overlapping mentions are resolved.
Near misses (typos, paraphrased names) fall back to fuzzy string matching and to embedding
similarity in the entity-name index. MetaQA-style ``[brackets]`` are used as a hint when
present, never required. Image: nearest entity images in the image index.
"""

from __future__ import annotations

import functools
import math
import re
import threading
import unicodedata
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, Sequence

import numpy as np

from kqa.graph import ENTITY, KGraph, load_graph

# words; an underscore separates two, as in identifiers used as names ("disease_or_syndrome",
# "Barack_Obama"), which people write with spaces
TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)
BRACKET = re.compile(r"\[([^\[\]]+)\]")
MAX_NGRAM = 12


def fold(text: str) -> str:
    """Case-, accent- and width-insensitive form of a token."""
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c)).casefold().replace("’", "'")


def tokens(text: str) -> list[tuple[int, int, str]]:
    """(start, end, folded token) for each word of ``text``."""
    return [(m.start(), m.end(), fold(m.group())) for m in TOKEN.finditer(text)]


def overlaps(span: tuple[int, int], spans: Sequence[tuple[int, int]]) -> bool:
    """Whether a character span shares a character with any of ``spans``."""
    return any(span[0] < end and span[1] > start for start, end in spans)


def alias_key(text: str) -> str:
    return " ".join(t for _s, _e, t in tokens(text))


def spoken(name: str) -> str:
    """A name as people write it: an identifier's underscores are spaces ("disease or
    syndrome" for ``disease_or_syndrome``); names with a space already are left as they are."""
    if "_" not in name or " " in name:
        return name
    return " ".join(part for part in name.split("_") if part) or name


def strip_brackets(question: str) -> tuple[str, list[tuple[int, int]]]:
    """The question without ``[ ]`` marks, and the marked spans in the cleaned text. Marks
    around nothing but spaces ("who directed [ ]") name nothing: they are dropped and give no
    span, as if the question had none, rather than a blank mention that fuzzy and embedding
    matching would then find some entity for (it was answered at confidence 0.48)."""
    spans, out, pos, shift = [], [], 0, 0
    for m in BRACKET.finditer(question):
        out.append(question[pos:m.start()])
        start = m.start() - shift
        out.append(m.group(1))
        if m.group(1).strip():
            spans.append((start, start + len(m.group(1))))
        shift += 2
        pos = m.end()
    out.append(question[pos:])
    return "".join(out), spans


HYPHENATED = re.compile(r"\b([^\W\d_]+)-([^\W\d_]+)\b")


def join_compounds(text: str, words: frozenset[str]) -> str:
    """``text`` with hyphenated words joined where the joined word is one of the KG's schema
    words (:attr:`KGraph.schema_words`): "what sub-region is X in" asks what "subregion" does,
    but the encoder reads "sub", "-", "region" and the model hears "region". Names are left
    alone ("Guinea-Bissau" is no schema word), and so is a text without hyphens."""
    if "-" not in text:
        return text
    return HYPHENATED.sub(lambda m: m.group(1) + m.group(2) if (m.group(1) + m.group(2)).casefold() in words
                          else m.group(0), text)


@dataclass
class Span:
    """A candidate mention: character span in the cleaned question and the nodes it names."""

    start: int
    end: int
    text: str
    key: str
    nodes: list[int]
    bracketed: bool = False


@dataclass
class Candidate:
    """A linked topic entity, best first in :class:`LinkResult`."""

    node: int
    name: str
    score: float
    source: str  # alias | bracket | fuzzy | embedding | image
    mention: str | None = None
    span: tuple[int, int] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "score": round(float(self.score), 4), "source": self.source,
                "mention": self.mention, "span": list(self.span) if self.span else None}


@dataclass
class LinkResult:
    question: str  # brackets removed
    candidates: list[Candidate] = field(default_factory=list)
    image_candidates: list[Candidate] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"question": self.question,
                "entities": [c.as_dict() for c in self.candidates],
                "image_entities": [c.as_dict() for c in self.image_candidates]}


class MentionScorer(Protocol):
    """Scores how likely each span is the question's topic-entity mention, in [0, 1]."""

    def score(self, question: str, spans: Sequence[Span], graph: KGraph) -> list[float]: ...


class AliasTable:
    """Folded alias → entity nodes, for n-gram lookup."""

    def __init__(self, graph: KGraph) -> None:
        table: dict[str, list[int]] = {}
        longest = 1
        for node in range(graph.num_nodes):
            if graph.node_kind[node] != ENTITY:
                continue
            for text in dict.fromkeys([graph.node_names[node], *graph.aliases[node]]):
                key = alias_key(text)
                if not key:
                    continue
                bucket = table.setdefault(key, [])
                if node not in bucket:
                    bucket.append(node)
                longest = max(longest, key.count(" ") + 1)
        for key, nodes in _unqualified(graph).items():
            table.setdefault(key, nodes)  # never over a name or alias someone has
        self.table = table
        self.names = graph.node_names
        self.max_tokens = min(longest, MAX_NGRAM)
        self.keys = list(table)
        self._containing: dict[str, list[str]] | None = None

    def longer_keys(self, key: str) -> list[str]:
        """Alias keys that hold ``key`` as a run of whole words and are longer ("samoa" →
        "american samoa"); found through the key's least common word."""
        if self._containing is None:
            index: dict[str, list[str]] = {}
            for alias in self.keys:
                for word in set(alias.split()):
                    index.setdefault(word, []).append(alias)
            self._containing = index
        words = key.split()
        pools = [self._containing.get(w, []) for w in words]
        pool = min(pools, key=len) if pools else []
        padded = f" {key} "
        return [alias for alias in pool if alias != key and padded in f" {alias} "]

    def spans(self, question: str, hints: list[tuple[int, int]]) -> list[Span]:
        """Every n-gram of the question that is an alias; an n-gram ending in a possessive
        ("Australia's capital") is also looked up without it. A word keeps its "'s" as one
        token, so that names holding one ("The Devil's Carnival") match whole."""
        words = tokens(question)
        found = []
        for i in range(len(words)):
            for n in range(1, min(self.max_tokens, len(words) - i) + 1):
                key = " ".join(w[2] for w in words[i:i + n])
                start, end = words[i][0], words[i + n - 1][1]
                if question.count("(", start, end) > question.count(")", start, end) and question[end:end + 1] == ")":
                    end += 1  # "Holy See (Vatican City State)": the name's own closing bracket
                readings = [(key, end)]
                if key.endswith("'s") and len(words[i + n - 1][2]) > 2:
                    readings.append((key[:-2], end - 2))
                for reading, stop in readings:
                    nodes = self.table.get(reading)
                    if nodes:
                        stop = self._own_punctuation(question, stop, nodes)
                        found.append(Span(start, stop, question[start:stop], reading, nodes,
                                          any(hs <= start and stop <= he for hs, he in hints)))
        return found

    def _own_punctuation(self, question: str, end: int, nodes: list[int]) -> int:
        """``end`` moved past the punctuation that follows it where a name it matched ends so
        ("Dig!", "What?"): a word's punctuation is no part of its alias key, and a mention
        tagger that read the "!" as part of the name cut the bare "Dig" to nothing."""
        tail = TRAILING_PUNCTUATION.match(question, end)
        if tail and any(self.names[n].endswith(tail.group()) for n in nodes):
            return tail.end()
        return end


TRAILING_PUNCTUATION = re.compile(r"[!?.]+")
NAME_PART_SCORE = 0.9  # a name's first or last words: below an exact alias, above sentence vectors
NAME_PART_ZIPF = 4.0  # a lower-case word at least this common in English is no name part


def _unqualified(graph: KGraph) -> dict[str, list[int]]:
    """Names without their trailing qualifier, as people say them: "Sint Maarten (Dutch
    part)" is "Sint Maarten". A trained mention tagger reads the qualifier as no part of the
    name ("(", "part", ")" at 0.04-0.25 against 1.0 for "Sint Maarten"), so the whole name lost
    to "Dutch". A qualifier with digits dates a former thing ("Leone (1964–2022)"): its bare
    name is the current one's, and is left to it."""
    out: dict[str, list[int]] = {}
    for node in range(graph.num_nodes):
        name = graph.node_names[node]
        if graph.node_kind[node] == ENTITY and name.endswith(")") and " (" in name:
            base, _, qualifier = name[:-1].rpartition(" (")
            if any(c.isdigit() for c in qualifier):
                continue
            key = alias_key(base)
            if key:
                out.setdefault(key, []).append(node)
    return out


class HeuristicMentionScorer:
    """Without a trained model: long, rare, capitalised, bracketed spans are likely mentions.

    Rarity comes from general English word frequencies (``wordfreq``): "what" or "film" is
    rarely a topic entity even when some entity is named so.
    """

    def score(self, question: str, spans: Sequence[Span], graph: KGraph) -> list[float]:
        scores = []
        for span in spans:
            rarity = min(max((7.0 - word_zipf(span.text)) / 7.0, 0.0), 1.0)
            length = 1.0 - math.exp(-len(span.text) / 8.0)
            cased = 1.0 if any(graph.node_names[n] == span.text for n in span.nodes) else (
                0.8 if span.text[:1].isupper() and span.start > 0 else 0.5)
            value = 0.45 * rarity + 0.35 * length + 0.2 * cased
            scores.append(1.0 if span.bracketed else value * 0.95)
        return scores


def resolve_overlaps(spans: list[Span], scores: list[float]) -> list[tuple[Span, float]]:
    """Keep the best non-overlapping spans (score, then length, decides).

    A name holding a shorter matched name scores at least as high as it (the longest match
    wins): both are names of the KG, and the longer one matching the question's words by
    chance is the rarer event. A tagger unsure of a name's first word ("Christmas" at 0.39
    where a question opens with the name) otherwise made Iceland's alias "Island" the mention of
    "Christmas Island's capital city is?"; on MetaQA without brackets this longest-match rule
    took a 3-epoch model's linked Hits@1 from 92.3 / 99.0 / 95.7 % to 95.3 / 99.9 / 98.9 %
    (gold topic: 95.7 / 100 / 99.9). A name the user bracketed is not outbid by one around it."""
    scores = [max([score] + [scores[j] for j, inner in enumerate(spans)
                             if j != i and not inner.bracketed and _inside(inner, span)])
              for i, (span, score) in enumerate(zip(spans, scores))]
    order = sorted(range(len(spans)), key=lambda i: (-scores[i], -(spans[i].end - spans[i].start)))
    kept: list[tuple[Span, float]] = []
    for i in order:
        span = spans[i]
        if all(span.end <= k.start or span.start >= k.end for k, _ in kept):
            kept.append((span, scores[i]))
    return kept


def _inside(inner: Span, outer: Span) -> bool:
    """Whether ``inner`` lies within ``outer`` and is shorter."""
    shorter = inner.end - inner.start < outer.end - outer.start
    return outer.start <= inner.start and inner.end <= outer.end and shorter


class Linker:
    """Entity linking for one KG version; build once, reuse (see :func:`get_linker`)."""

    def __init__(self, graph: KGraph) -> None:
        self.graph = graph
        self.aliases = AliasTable(graph)
        self.degree = graph.degree()
        self.heuristic = HeuristicMentionScorer()

    # -- text ------------------------------------------------------------------------------
    def link(self, question: str, top_k: int = 5, scorer: MentionScorer | None = None,
             fallback: bool = True) -> LinkResult:
        """Topic-entity candidates for a question (brackets optional)."""
        clean, hints = strip_brackets(question)
        spans = self.aliases.spans(clean, hints)
        result = LinkResult(clean)
        if spans:
            scores = (scorer or self.heuristic).score(clean, spans, self.graph)
            words = tokens(clean)
            for span, score in resolve_overlaps(spans, scores):
                longer = self._misspelt_longer(clean, words, span, score) if fallback else []
                result.candidates.extend(longer)
                weight = 0.8 if longer else 1.0
                result.candidates.extend(self._span_candidates(span, score * weight))
        best = max((c.score for c in result.candidates), default=0.0)
        if fallback and (best < 0.5 or (hints and not any(s.bracketed for s in spans))):
            near = self._near_misses(clean, hints, spans)
            if scorer is not None:
                near = _as_mentions(near, clean, hints, scorer, self.graph)
            result.candidates.extend(near)
        result.candidates = _dedupe(sorted(result.candidates, key=lambda c: -c.score))[:top_k]
        return result

    def _span_candidates(self, span: Span, score: float) -> list[Candidate]:
        """One candidate per node an alias names; exact-case and well-connected nodes first."""
        nodes = span.nodes
        if len(nodes) > 1:
            nodes = sorted(nodes, key=lambda n: (self.graph.node_names[n] != span.text, -self.degree[n]))
        source = "bracket" if span.bracketed else "alias"
        return [Candidate(n, self.graph.node_names[n], score * (0.98 ** rank), source, span.text,
                          (span.start, span.end)) for rank, n in enumerate(nodes)]

    def _misspelt_longer(self, clean: str, words: list[tuple[int, int, str]], span: Span, score: float,
                         reach: int = 4, cutoff: float = 0.85) -> list[Candidate]:
        """A longer name, misspelt, around a name matched exactly: "Amerrican Samoa" holds
        "Samoa", "Dmocratic Republic of the Congo" "Republic of the Congo", "Chrismtas Island"
        Iceland's alias "Island". Only names that contain the matched one are tried, and only
        when a word next to it is unknown to English (a slip, not a word of the question), so a
        correctly spelt name beside ordinary words ("the alien") stays what it is. The longer
        name's candidates come first; the short name's stay as alternatives."""
        first = next(i for i, w in enumerate(words) if w[0] >= span.start)
        last = max(i for i, w in enumerate(words) if w[0] < span.end)  # "Samoa's": one word
        near = [*range(max(0, first - reach), first), *range(last + 1, min(len(words), last + reach + 1))]
        unknown = [i for i in near if word_zipf(words[i][2]) < 1.0]
        longer = self.aliases.longer_keys(span.key) if unknown else []
        if not longer:
            return []
        best: tuple[float, str, int, int] | None = None
        for left in range(max(0, first - reach), first + 1):
            for right in range(last, min(len(words), last + reach + 1)):
                if not any(left <= i <= right for i in unknown):
                    continue
                phrase = " ".join(w[2] for w in words[left:right + 1])
                for match, similarity in self._fuzzy(phrase, cutoff=cutoff, choices=longer):
                    if best is None or similarity > best[0]:
                        best = (similarity, match, words[left][0], span.end if right == last else words[right][1])
        if best is None:
            return []
        similarity, match, start, end = best
        value = max(score, 0.9 * similarity)
        return [Candidate(node, self.graph.node_names[node], value * (0.98 ** rank), "fuzzy",
                          clean[start:end], (start, end))
                for rank, node in enumerate(self.aliases.table[match][:3])]

    def _near_misses(self, clean: str, hints: list[tuple[int, int]], spans: list[Span]) -> list[Candidate]:
        """Fuzzy string and embedding matches for phrases that are no exact alias."""
        # near misses are looked for only where no exact alias matched: a fuzzy "Book 1"
        # must not compete with the exact "Book 7" the question names
        exact = {span.key for span in spans}
        covered = [(span.start, span.end) for span in spans]
        regions = [(s, e) for s, e in hints] or _content_spans(clean)
        if not hints:  # "Bosnia and Hekzegovina": one name over "and", tried before its parts
            regions = _joined(clean, regions) + regions
        regions = [(s, e) for s, e in regions
                   if alias_key(clean[s:e]) not in exact and not any(s < ce and e > cs for cs, ce in covered)]
        found: list[Candidate] = []
        named: list[tuple[int, int]] = []  # regions a match explains: their parts are not tried
        by_part: list[tuple[int, int]] = []  # regions a name part explains: no embedding search
        for s, e in regions[:12]:
            if any(ns <= s and e <= ne for ns, ne in named):
                continue
            for part in _sub_phrases(clean[s:e]):  # the longest part that matches anything
                at = clean.find(part, s, e)
                where = (at, at + len(part)) if at >= 0 else (s, e)
                holders = self._name_part_candidates(part, where)
                if holders:
                    found.extend(holders)
                    named.append((s, e))
                    by_part.append((s, e))
                    break
                matches = self._fuzzy(alias_key(part))
                for match, score in matches:
                    for node in self.aliases.table[match][:3]:
                        found.append(Candidate(node, self.graph.node_names[node], 0.9 * score,
                                               "fuzzy", part, where))
                if matches:
                    named.append((s, e))
                    break
        found.extend(self._embedding_matches(clean, [r for r in regions[:12] if r not in by_part]))
        if not found and not spans and not hints:  # the last resort: a lower-case surname ("einstein")
            found = self._name_part_words(clean, covered + regions)
        return found

    def _name_part_words(self, clean: str, regions: list[tuple[int, int]]) -> list[Candidate]:
        """The names whose first or last word is a word of the question outside ``regions``:
        a surname typed in lower case is no content span when English uses it as a word too
        ("einstein", Zipf 3.7; spans take words under 3.5), and "where did einstein die"
        linked nothing. Only where nothing else links, not even an exact name the tagger doubts:
        tried on every lower-case word, they took 9 of 700 MetaQA paraphrases (all lower case)
        from the match that was right (docs/results.md)."""
        found: list[Candidate] = []
        for m in TOKEN.finditer(clean):
            if not any(s <= m.start() and m.end() <= e for s, e in regions):
                found.extend(self._name_part_candidates(m.group(), (m.start(), m.end())))
        return found

    def _name_part_candidates(self, part: str, where: tuple[int, int]) -> list[Candidate]:
        return [Candidate(node, self.graph.node_names[node], NAME_PART_SCORE * 0.98 ** rank, "name part", part, where)
                for rank, node in enumerate(self._name_part_of(part))]

    def _name_part_of(self, part: str, limit: int = 3) -> list[int]:
        """Entities whose name begins or ends with the words of ``part`` ("Einstein" →
        Albert Einstein, "Napoleon" → Napoleon Bonaparte, "van Gogh" → Vincent van Gogh), the
        best connected first, at most ``limit``. People name a person by the surname: before,
        "where did Einstein die" was linked only by sentence vectors, to Albert Einstein (0.67)
        and Isaac Newton (0.48, another physicist), and answered Princeton at 0.58 against
        Newton's London. A common word written in lower case ("city", "prize") names nothing
        this way; capitalised, it is taken as a name ("Lincoln")."""
        key = alias_key(part)
        if len(key) < 3 or (not part[:1].isupper() and word_zipf(part) >= NAME_PART_ZIPF):
            return []  # "I" ends "World War I", and "where was I born" is not about it
        words = key.split()
        holders: list[int] = []
        for alias in self.aliases.longer_keys(key):
            held = alias.split()
            if held[:len(words)] == words or held[-len(words):] == words:
                holders.extend(n for n in self.aliases.table[alias] if n not in holders)
        return sorted(holders, key=lambda n: -self.degree[n])[:limit]

    def _fuzzy(self, key: str, limit: int = 3, cutoff: float = 0.8,
               choices: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """Alias keys like ``key``, similarity in [0, 1]: the better of the edit-ratio (a
        letter dropped or added) and the optimal-string-alignment similarity, which counts two
        letters swapped as one edit ("Blearus" is one slip from "Belarus", not two). Where two
        keys are as near by the better measure, the other one decides, a thousandth of a point
        at most: "Beliez" is one swap from "Belize" but two edits from Belgium's "Belgie"."""
        from rapidfuzz import fuzz, process
        from rapidfuzz.distance import OSA

        if len(key) < 3:
            return []
        found: set[str] = set()
        for scorer, floor in ((fuzz.ratio, cutoff * 100), (OSA.normalized_similarity, cutoff)):
            found.update(match for match, _score, _i in process.extract(
                key, self.aliases.keys if choices is None else choices, scorer=scorer, limit=limit,
                score_cutoff=floor))
        scored = []
        for match in found:
            both = (fuzz.ratio(key, match) / 100.0, OSA.normalized_similarity(key, match))
            scored.append((match, max(both) - 0.001 * (1.0 - min(both))))
        return sorted(scored, key=lambda kv: (-kv[1], kv[0]))[:limit]

    def _embedding_matches(self, clean: str, regions: list[tuple[int, int]]) -> list[Candidate]:
        from kqa.index import open_index, read_manifest

        phrases = [clean[s:e] for s, e in regions]
        manifest, _why = read_manifest(self.graph.name, "entities")
        if manifest is None or not phrases:
            return []  # no index built: embedding fallback unavailable, alias/fuzzy still work
        index = open_index(self.graph.name, "entities", _encoder_ref(manifest.encoder))
        if index is None:
            return []
        from kqa.encode import get_encoder

        encoder = get_encoder(_encoder_ref(index.manifest.encoder), "text")
        scores, rows = index.search(encoder.encode(phrases), 3)
        out = []
        for phrase, region, row_scores, row_ids in zip(phrases, regions, scores, rows):
            for score, row in zip(row_scores, row_ids):
                node = int(index.targets[row]) if row >= 0 else -1
                if node >= 0 and score > 0.6:
                    out.append(Candidate(node, self.graph.node_names[node], 0.85 * float(score),
                                         "embedding", phrase, region))
        return out

    # -- image -----------------------------------------------------------------------------
    def link_image(self, image: Any, top_k: int = 5, encoder_ref: str | None = None,
                   temperature: float = 0.05) -> list[Candidate]:
        """Entities whose images are nearest to ``image``; scores are a softmax over the
        per-entity best similarities (so they say how sure the match is, not just how close)."""
        from kqa.encode import get_encoder
        from kqa.images import open_image
        from kqa.index import open_index

        picture = open_image(image)  # refuse a bad image before any index work
        index = open_index(self.graph.name, "images", encoder_ref)
        if index is None:
            return []
        encoder = get_encoder(encoder_ref, "image")
        query = encoder.encode_batch([picture])
        return image_candidates(self.graph, index, query[0], top_k, temperature)


def image_candidates(graph: KGraph, index: Any, query: np.ndarray, top_k: int,
                     temperature: float) -> list[Candidate]:
    """Per-entity best similarity over the image index, turned into probabilities. Entities
    whose images are the same picture (a territory flying its sovereign's flag) tie exactly:
    ties are ranked by node, lowest first, as answers are (:func:`kqa.answer.top_reached`),
    not in whatever order the search returned them."""
    scores, rows = index.search(query[None, :], min(len(index.keys), 64))
    best: dict[int, float] = {}
    for score, row in zip(scores[0], rows[0]):
        node = int(index.targets[row]) if row >= 0 else -1
        if node >= 0 and score > best.get(node, -1.0):
            best[node] = float(score)
    if not best:
        return []
    nodes = list(best)
    sims = np.array([best[n] for n in nodes])
    probs = np.exp((sims - sims.max()) / temperature)
    probs /= probs.sum()
    order = sorted(range(len(nodes)), key=lambda i: (-probs[i], nodes[i]))[:top_k]
    return [Candidate(nodes[i], graph.node_names[nodes[i]], float(probs[i]), "image") for i in order]


@functools.lru_cache(maxsize=200_000)
def word_zipf(word: str) -> float:
    """How common an English word or phrase is (``wordfreq``'s Zipf scale, 0 for unknown
    ones); cached: the same words come back in every question and for every span beside them."""
    from wordfreq import zipf_frequency

    return float(zipf_frequency(word, "en"))


def _encoder_ref(identity: dict[str, Any]) -> str:
    return str(identity["name"])


def _content_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of runs of capitalised or rare words: where an unmatched name most
    likely is."""
    spans: list[tuple[int, int]] = []
    run: list[tuple[int, int]] = []
    for i, match in enumerate(TOKEN.finditer(text)):
        word = match.group()
        if (word[:1].isupper() and i > 0) or word_zipf(word) < 3.5:
            run.append((match.start(), match.end()))
        elif run:
            spans.append((run[0][0], run[-1][1]))
            run = []
    if run:
        spans.append((run[0][0], run[-1][1]))
    return spans


CONNECTORS = {"and", "of", "the", "et", "de", "la", "du", "des", "del", "da", "do", "y", "und", "&"}


def _joined(text: str, spans: list[tuple[int, int]], gap: int = 2) -> list[tuple[int, int]]:
    """Runs of content spans joined over at most ``gap`` connecting words ("Bosnia and
    Herzegovina", "Republic of Macedonia"): many names hold "and" or "of", which split
    :func:`_content_spans`'s runs. Only the joined runs, longest first."""
    joined: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(spans) + 1):
        between = text[spans[i - 1][1]:spans[i][0]].split() if i < len(spans) else None
        if between is not None and 0 < len(between) <= gap and all(w.lower() in CONNECTORS for w in between):
            continue
        if i - start > 1:
            joined.append((spans[start][0], spans[i - 1][1]))
        start = i
    return sorted(joined, key=lambda r: r[0] - r[1])


def _sub_phrases(phrase: str, max_words: int = 4) -> list[str]:
    """The phrase, then (for phrases of up to ``max_words`` words) its shorter runs of words,
    longest first: a misspelt name next to a rare word ("bordering Brazl") is found
    inside the run of rare and capitalised words it was taken from."""
    words = phrase.split()
    if len(words) > max_words:
        return [phrase]
    return [" ".join(words[i:i + n]) for n in range(len(words), 0, -1) for i in range(len(words) - n + 1)]


def _as_mentions(candidates: list[Candidate], clean: str, hints: list[tuple[int, int]],
                 scorer: MentionScorer, graph: KGraph) -> list[Candidate]:
    """Near misses weighed by how much their words read as a mention to a trained tagger, as
    exact matches are: a word of the question that only resembles a name ("screenwriter",
    0.70 like the tag "screenplay") must not outrank the exact name the tagger was merely unsure
    of ("The Card Player", 0.23), while a misspelt name where a name belongs keeps its
    similarity. Inside the user's brackets they keep it whatever the tagger says."""
    spans = [Span(c.span[0], c.span[1], clean[c.span[0]:c.span[1]], "", [c.node],
                  any(hs <= c.span[0] and c.span[1] <= he for hs, he in hints))
             for c in candidates if c.span]
    weights = iter(scorer.score(clean, spans, graph))
    return [replace(c, score=c.score * next(weights)) if c.span else c for c in candidates]


def _dedupe(candidates: list[Candidate]) -> list[Candidate]:
    seen: set[int] = set()
    out = []
    for c in candidates:
        if c.node not in seen:
            seen.add(c.node)
            out.append(c)
    return out


_linkers: dict[str, Linker] = {}
_linkers_lock = threading.Lock()


def get_linker(kg_name: str) -> Linker:
    """The linker for the KG's current graph view (alias table built once per version)."""
    graph = load_graph(kg_name)
    with _linkers_lock:
        linker = _linkers.get(kg_name)
        if linker is None or linker.graph is not graph:
            linker = _linkers[kg_name] = Linker(graph)
        return linker
