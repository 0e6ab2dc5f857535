"""How familiar a question's wording is to a trained model, so that ``ask`` can say it is unsure
of a question unlike anything it learned from ("what is the GDP of Armenia" on a KG without
GDP), instead of reading it as the nearest relation it knows and answering confidently.

A question's *wording* is the mean of its text encoder token states outside the topic entity's
mention, normalised: the entity is left out because every KG names thousands of them, and what
decides whether the model can read a question is the rest of the sentence. Its *familiarity* is
the cosine of the nearest training question's wording (a bank of up to :data:`BANK_SIZE` of
them, saved with the model). The line below which a question counts as unfamiliar is a low
quantile of the familiarity of the model's own validation questions, so it is set by the data
the model was trained on, per model, and not by hand. Measured on one countries model: 0.4 %
of the hand-written answerable phrasings of ``benchmarks/countries_phrasings.py`` and 91 % of
its questions the KG holds no fact for fell below it; on a MetaQA model, 27 % of the noisy
machine-paraphrased 1-hop questions did, and those were answered right 58 % of the time against
93 % for the rest: the line sets apart the questions the model gets wrong. (A bank of 4,096
separated no better and, read from memory on every question, cost 0.9 ms of ``ask``.)
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from kqa.link import overlaps

BANK_SIZE = 1024  # training wordings kept: 0.75 MB at 384-d half precision
QUANTILE = 0.01  # the share of the model's own validation questions that would count as unfamiliar
FILE = "familiarity.safetensors"


def wording(states: torch.Tensor, offsets: Sequence[tuple[int, int]],
            mentions: Sequence[tuple[int, int]]) -> torch.Tensor:
    """[D] normalised mean of the token states of real tokens (not [CLS]/[SEP]/padding, whose
    offsets are empty) that overlap no mention span; all real tokens if the mention is all."""
    real = [i for i, (a, b) in enumerate(offsets) if b > a]
    keep = [i for i in real if not overlaps(offsets[i], mentions)] or real
    if not keep:
        return torch.zeros(states.shape[-1])
    vector = states[keep].float().mean(0)
    return vector / vector.norm().clamp(min=1e-9)


@dataclass
class Familiarity:
    """A bank of training wordings [N, D] and the line below which a question is unfamiliar."""

    bank: torch.Tensor
    threshold: float

    @classmethod
    def build(cls, train: Sequence[Any], val: Sequence[Any], seed: int) -> "Familiarity | None":
        """From encoded examples (``states``, ``offsets``, ``mention_spans``); None when there
        are too few validation questions to set the line from."""
        chosen = list(train)
        random.Random(seed).shuffle(chosen)
        bank = torch.stack([example_wording(e) for e in chosen[:BANK_SIZE]]) if chosen else None
        if bank is None or len(val) < 20:
            return None
        made = cls(bank, 0.0)
        nearest = [made.score(example_wording(e)) for e in val]  # as answering will score them
        made.threshold = float(np.quantile(nearest, QUANTILE))
        return made

    def __post_init__(self) -> None:
        # stored in half precision (half the file; cosines move by about 1e-3) but scored in
        # single: the CPU has no half-precision matrix-vector kernel, and a half bank cost
        # 0.13 ms a question against 0.02 ms for a single one (1,024 × 384). Rounded through
        # half here too, so the line set at training scores what loading will give.
        self.bank = self.bank.half().float()

    def score(self, vector: torch.Tensor) -> float:
        """Cosine of the nearest training wording."""
        return float((self.bank @ vector.float()).max())

    def save(self, folder: Path) -> dict[str, Any]:
        """Writes the bank (half precision); returns what the model's config records."""
        save_file({"bank": self.bank.half().contiguous()}, str(Path(folder) / FILE))
        return {"file": FILE, "threshold": round(self.threshold, 6), "size": int(self.bank.shape[0]),
                "quantile": QUANTILE}

    @classmethod
    def load(cls, folder: Path, meta: dict[str, Any] | None) -> "Familiarity | None":
        """None for a model saved without one (trained before this existed)."""
        if not meta or not (Path(folder) / meta["file"]).is_file():
            return None
        return cls(load_file(str(Path(folder) / meta["file"]))["bank"], float(meta["threshold"]))


def example_wording(example: Any) -> torch.Tensor:
    return wording(example.states, example.offsets, example.mention_spans)


def capped_confidence(confidence: float, familiarity: float, threshold: float, line: float) -> float:
    """Below the familiarity line, at most ``line`` (the low-confidence line) scaled by how far
    below it the question lies: an unfamiliar question is reported as unsure however sure the
    answer's own score is, and the less familiar the lower. At or above it, unchanged."""
    if familiarity >= threshold or threshold <= 0:
        return confidence
    return min(confidence, line * max(familiarity, 0.0) / threshold)
