"""Familiarity: a question worded unlike any training question is answered, but not confidently."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import kqa
import kqa.answer
from kqa.answer import LOW_CONFIDENCE, Answerer
from kqa.familiar import Familiarity, capped_confidence, wording


def test_wording_leaves_out_the_mention_and_the_special_tokens() -> None:
    states = torch.tensor([[9.0, 9.0], [1.0, 0.0], [5.0, 5.0], [0.0, 1.0], [9.0, 9.0]])
    offsets = [(0, 0), (0, 3), (4, 9), (10, 14), (0, 0)]  # [CLS] who Ridley directed [SEP]
    vector = wording(states, offsets, [(4, 9)])
    assert torch.allclose(vector, torch.tensor([1.0, 1.0]) / 2 ** 0.5)
    # a question that is all mention keeps its words rather than vanishing
    assert torch.allclose(wording(states, offsets, [(0, 14)]), wording(states, offsets, []))


def test_confidence_is_capped_below_the_line_only() -> None:
    assert capped_confidence(0.9, familiarity=0.8, threshold=0.6, line=0.3) == 0.9
    assert capped_confidence(0.9, familiarity=0.3, threshold=0.6, line=0.3) == pytest.approx(0.15)
    assert capped_confidence(0.1, familiarity=0.3, threshold=0.6, line=0.3) == 0.1
    assert capped_confidence(0.9, familiarity=-0.2, threshold=0.6, line=0.3) == 0.0


def test_bank_round_trips_and_an_old_model_has_none(tmp_path: Path) -> None:
    bank = Familiarity(torch.nn.functional.normalize(torch.randn(8, 4), dim=1).half(), 0.5)
    meta = bank.save(tmp_path)
    loaded = Familiarity.load(tmp_path, meta)
    assert loaded is not None and loaded.threshold == 0.5 and torch.equal(loaded.bank, bank.bank)
    assert loaded.score(bank.bank[3].float()) == pytest.approx(1.0, abs=1e-3)
    assert Familiarity.load(tmp_path, None) is None
    # stored in half precision (half the file), scored in single: the CPU has no
    # half-precision matrix-vector kernel (several times slower on every question)
    from safetensors.torch import load_file

    assert load_file(str(tmp_path / meta["file"]))["bank"].dtype == torch.float16
    assert loaded.bank.dtype == torch.float32


@pytest.mark.slow
def test_a_question_unlike_the_training_ones_is_answered_with_low_confidence(
        films_home: dict[str, Path]) -> None:
    meta = json.loads((films_home["model"] / "config.json").read_text())
    assert (films_home["model"] / meta["familiarity"]["file"]).is_file()
    assert 0.0 < meta["familiarity"]["threshold"] < 1.0
    line = next(l for l in films_home["test"].read_text().splitlines() if l.startswith("who directed"))
    film = line.split("[")[1].split("]")[0]
    known = kqa.ask("films", f"who directed {film}")
    assert known.familiarity is not None and known.familiarity >= meta["familiarity"]["threshold"]
    assert known.confidence > LOW_CONFIDENCE and "worded unlike" not in known.message
    odd = kqa.ask("films", f"how much money did {film} make at the box office in 1998")
    assert odd.familiarity is not None and odd.familiarity < meta["familiarity"]["threshold"]
    assert odd.confidence < LOW_CONFIDENCE and "worded unlike" in odd.message
    # the ranking is the model's: only the confidence says it is unsure
    answerer = kqa.answer.load_answerer("films", films_home["model"])
    bank, answerer.familiarity = answerer.familiarity, None
    try:
        plain = answerer.ask(f"how much money did {film} make at the box office in 1998")
    finally:
        answerer.familiarity = bank
    assert [a.name for a in plain.answers] == [a.name for a in odd.answers]
    assert plain.familiarity is None and plain.confidence >= odd.confidence


@pytest.mark.slow
def test_a_model_saved_without_a_bank_still_answers(films_home: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "old"
    shutil.copytree(films_home["model"], folder)
    meta = json.loads((folder / "config.json").read_text())
    (folder / meta.pop("familiarity")["file"]).unlink()
    (folder / "config.json").write_text(json.dumps(meta))
    result = Answerer("films", folder).ask("what films did someone direct")
    assert result.familiarity is None and "worded unlike" not in result.message
