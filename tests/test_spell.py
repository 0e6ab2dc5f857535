"""Spelling: a slip in a question's words is read as the word meant, names and real words never."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import kqa
import kqa.answer
from kqa.answer import Answerer
from kqa.spell import Speller, vocabulary

from helpers import assert_read_as_written


def _speller() -> Speller:
    known = ["capital", "official", "languages", "subregion", "which", "what", "is", "the", "of"]
    return Speller(known, names={"samoa", "american", "ixeland", "austria", "golden", "wild"})


def test_a_slip_is_read_as_the_word_meant() -> None:
    speller = _speller()
    assert speller.correct("what is the captial of France") == "what is the capital of France"
    assert speller.correct("which offcial languages") == "which official languages"
    assert speller.correct("Whcih subregion") == "Which subregion"  # the case is kept
    assert speller.correct("what is the suubregion of Chad") == "what is the subregion of Chad"
    # a word no model word is near becomes the most common English word one slip away
    assert speller.correct("which natoins border Chad") == "which nations border Chad"


def test_names_real_words_short_words_and_brackets_are_left() -> None:
    speller = _speller()
    for question in ["what is the capital of Ixeland",  # a name of the KG: the linker's business
                     "which nest is the capital",  # a word of English, whatever was meant
                     "wat is the capital",  # too short to tell
                     "what is the capital of Zqxwv",  # nothing near
                     "what is the capital of Austia",  # capitalised inside: a (misspelt) name
                     "what is the capital of austia",  # "austin" is English, but "austria" as near
                     "Burnei has which city as its capital",  # an opening name: no model word near
                     "name the subregions of Asia"]:  # a plural of a model word
        assert speller.correct(question) == question
    assert speller.correct("who directed [Captial Gains]", keep=[(13, 29)]) == "who directed [Captial Gains]"


def test_vocabulary_keeps_frequent_words_outside_mentions_but_not_recurring_slips() -> None:
    texts = ["what is the capital of Chad"] * 30 + ["what is the capitl of Chad"] * 3 + ["what is the tenge"] * 2
    mentions = [[(23, 27)]] * 30 + [[(22, 26)]] * 3 + [[]] * 2
    words = vocabulary(texts, mentions)
    assert "capital" in words and "chad" not in words  # inside the mention
    assert "capitl" not in words  # the generator's slip, ten times rarer than "capital"
    assert "tenge" not in words  # seen twice: too few


@pytest.mark.slow
def test_ask_reads_a_slip_as_the_word_meant(films_home: dict[str, Path], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    line = assert_read_as_written(films_home["test"], "which movies were directed by", "directed", "direcetd")
    # evaluating a question file reads it the same way
    slips = tmp_path / "slips.txt"
    slips.write_text(line.replace("directed", "direcetd") + "\n")
    seen: list[str] = []
    real = kqa.answer.make_examples

    def spy(questions, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.extend(q.text for q in questions)
        return real(questions, *args, **kwargs)

    monkeypatch.setattr(kqa.answer, "make_examples", spy)
    assert kqa.evaluate("films", [slips], gold_topics=False).hits1 == 1.0
    assert seen == [line.split("\t")[0]]
    # a model saved before spelling was read reads the question as typed
    folder = tmp_path / "old"
    shutil.copytree(films_home["model"], folder)
    meta = json.loads((folder / "config.json").read_text())
    del meta["vocabulary"]
    (folder / "config.json").write_text(json.dumps(meta))
    assert Answerer("films", folder).read("which movies were direcetd by") == "which movies were direcetd by"
