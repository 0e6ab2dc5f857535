"""Spelling: a word of a question that neither English nor the model knows is read as the
nearest word that one of them does ("captial" → "capital", "natoins" → "nations"), before the
question is encoded.

A model reads a question through subword tokens: "captial" becomes "cap", "##tia", "##l", which
no training question had, and the relation reader follows whatever is left. Training shows the
generator's questions with a typo in some of them (:func:`kqa.generate.add_typo`), which helps,
but one slip per held-out question still cost a countries model six points of Hits@1.

A word is corrected only when it is all letters, four or more of them, not capitalised unless
it opens the question (a capitalised word inside a question is taken for a name: corrected,
"Austia" became "Austin" and "Beliez" "Belief", and linking a misspelt name to its entity fell
from 98.9 to 96.6 %; an opening capitalised word is only read as a word of the model's), and
at the same time:
not a word of the model's training questions (outside entity mentions, seen at least
:data:`MIN_COUNT` times, so the generator's own typos do not count as known); not a word of
any entity name or alias of the KG (names are the linker's business, and it matches them
fuzzily itself); and rare in English (``wordfreq`` Zipf below :data:`ENGLISH_ZIPF`: "nest" for
"next" is a word, and is left). It becomes the nearest word (optimal string alignment distance
1, or 2 for words of eight letters or more) among the model's words and the most common English
ones; ties go to the model's words, then to the more common. A word that would become an English
word but is as near a word of some entity name ("austia": "austin", "austria") is left for the
linker. Words inside ``[brackets]`` are never touched.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from typing import Iterable, Sequence

from kqa.link import fold, overlaps, word_zipf

MIN_COUNT = 3  # a training word seen fewer times may be one of the generator's typos
ENGLISH_ZIPF = 2.5  # at or above: a word of English, whatever the question meant
ENGLISH_WORDS = 30_000  # the most common English words that a slip may be read as
LONG_WORD = 8  # from this length two slips are allowed
WORD = re.compile(r"[^\W\d_]+")


def vocabulary(texts: Iterable[str], mentions: Iterable[Sequence[tuple[int, int]]]) -> list[str]:
    """The folded words that training questions use outside their entity mentions at least
    :data:`MIN_COUNT` times, sorted (what a model's config records)."""
    counts: Counter[str] = Counter()
    for text, spans in zip(texts, mentions):
        counts.update(fold(m.group()) for m in WORD.finditer(text) if not overlaps(m.span(), spans))
    frequent = [word for word, count in counts.items() if count >= MIN_COUNT]
    return sorted(word for word in frequent if not _slip_of(word, counts, frequent))


def _slip_of(word: str, counts: Counter[str], words: Sequence[str]) -> bool:
    """Whether a word rare in English is one slip from a training word seen ten times as
    often: the generator's typos recur ("capitl" beside "capital") and are no words to keep."""
    if word_zipf(word) >= ENGLISH_ZIPF or len(word) < 4:
        return False
    from rapidfuzz import process
    from rapidfuzz.distance import OSA

    near = process.extract(word, words, scorer=OSA.distance, score_cutoff=1, limit=None)
    return any(counts[other] >= 10 * counts[word] for other, _d, _i in near if other != word)


def name_words(aliases: Iterable[str]) -> set[str]:
    """The folded words of entity names and aliases (the linker's alias keys)."""
    return {fold(w) for alias in aliases for w in WORD.findall(alias)}


@functools.lru_cache(maxsize=1)
def english_words() -> tuple[str, ...]:
    from wordfreq import top_n_list

    return tuple(w for w in top_n_list("en", ENGLISH_WORDS) if w.isalpha() and len(w) >= 3)


class Speller:
    """Corrects a question's unknown words (see the module's docstring)."""

    def __init__(self, known: Sequence[str], names: Iterable[str]) -> None:
        self.known = set(known)
        self.names = set(names)  # :func:`name_words`
        self._name_list: list[str] | None = None  # sorted, when first needed
        self.model_words = sorted(self.known)  # sorted: ties must not hang on set order
        english = [w for w in english_words() if w not in self.known]
        self.choices = self.model_words + english  # the model's words first: ties go to them

    def correct(self, question: str, keep: Sequence[tuple[int, int]] = ()) -> str:
        """``question`` with its unknown words replaced; ``keep``: spans never touched."""
        out, last = [], 0
        for match in WORD.finditer(question):
            opening = not question[:match.start()].strip()
            if overlaps(match.span(), keep) or (match.group()[0].isupper() and not opening):
                continue  # a capitalised word inside the question is taken for a name
            better = self.word(match.group(), model_words_only=opening and match.group()[0].isupper())
            if better is not None:
                out += [question[last:match.start()], better]
                last = match.end()
        return "".join(out) + question[last:] if out else question

    def word(self, word: str, model_words_only: bool = False) -> str | None:
        """The correction of one word, or None to keep it; ``model_words_only``: only into a
        word of the model's (for a capitalised first word, which may be a name: "Burnei has
        which city as its capital" is not about anything "burned")."""
        folded = fold(word)
        if (len(folded) < 4 or not folded.isalpha() or self._known(folded) or folded in self.names
                or word_zipf(folded) >= ENGLISH_ZIPF):
            return None
        from rapidfuzz import process
        from rapidfuzz.distance import OSA

        limit = 2 if len(folded) >= LONG_WORD else 1
        choices = self.model_words if model_words_only else self.choices
        found = process.extract(folded, choices, scorer=OSA.distance, score_cutoff=limit, limit=8)
        if not found:
            return None
        best, distance, index = min(found, key=lambda hit: (hit[1], hit[2]))  # nearest, then listed first
        if index >= len(self.model_words) and self._near_a_name(folded, distance):
            return None  # "austia": Austria's, for the linker, rather than the English "austin"
        return _same_case(word, best)

    def _near_a_name(self, folded: str, distance: int) -> bool:
        """Whether a word of an entity name is as near as ``distance``."""
        from rapidfuzz import process
        from rapidfuzz.distance import OSA

        if self._name_list is None:
            self._name_list = sorted(self.names)
        return process.extractOne(folded, self._name_list, scorer=OSA.distance, score_cutoff=distance) is not None

    def _known(self, folded: str) -> bool:
        """A word of the model's, or one with a plural ending on one ("subregions")."""
        return any(folded[:len(folded) - len(end)] in self.known
                   for end in ("", "s", "es") if folded.endswith(end))


def _same_case(original: str, word: str) -> str:
    if original.isupper() and len(original) > 1:
        return word.upper()
    if original[:1].isupper():
        return word[:1].upper() + word[1:]
    return word
