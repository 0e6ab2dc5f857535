"""A KG from another domain, loaded without a knowledge pack (no question templates): how well
a model trained only on questions generated from it answers wordings it never trained on.

    python benchmarks/generic_kg.py KB_FILE [--name NAME] [--home DIR] [--seed 0]
                                   [--questions FILE] [--init MODEL] [--train-questions N] [--json]

Loads KB_FILE (any format ``kqa kg load`` reads) into a fresh ``KQA_HOME`` (a temporary folder
unless ``--home``), builds its indexes and trains with ``kqa train --generated``: the questions
are the generic wordings read off the relation names (:func:`kqa.generate.generic_phrasing`),
one and two hops. Then it asks the held-out generic wordings (the ``!`` ones, another seed),
the entity linked from the text as ``kqa ask`` links it, and prints Hits@1 for one-hop and
two-hop questions with the time of each step. Baseline, same questions: answering every
question with the answer its relation path has most often in the training questions.
``--train-questions N`` trains on N of the generated training questions only (drawn with the
seed): a small target set, to compare fine-tuning (``--init``) with training from scratch
where data is scarce.

``--questions FILE`` (``question<TAB>answer1|answer2``) also asks questions written by hand,
as people word them, and prints each one the model gets wrong. One such KG ships here:
``benchmarks/phrasings/works/`` (113 facts written by hand: books, films, companies,
discoveries, paintings and who made them, where those people were born, the countries of those
places, and the years books were published, films released and companies founded, as typed
literals; 36 questions, most naming a doer by its noun, "where was the discoverer of Europa
born", six asking "when"), and ``benchmarks/phrasings/people/`` (107 facts whose relations are
named in other shapes: verbs with a preposition, "works_for", "lives_in", "died_in"; nouns
with one, "member_of", "capital_of"; "in_language"; "won"; "spouse"; 53 questions such as
"who did Tim Berners-Lee work for", "which band was John Lennon a member of", "what language
is Parasite in"). The UMLS one the docs report comes from the ``pykeen`` wheel
(``pykeen/datasets/umls/{train,valid,test}.txt``, concatenated).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report  # noqa: E402


def hop_kind(group: str) -> str:
    return "two-hop" if ">" in group else "one-hop"


def majority_answers(examples: list) -> dict[str, int]:  # type: ignore[type-arg]
    """The answer each relation path has most often among ``examples``."""
    counts: dict[str, Counter[int]] = defaultdict(Counter)
    for e in examples:
        counts[e.group].update(e.answers)
    return {group: c.most_common(1)[0][0] for group, c in counts.items() if c}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kb", type=Path)
    parser.add_argument("--name", default="generic")
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0, help="training seed (the held-out questions keep theirs)")
    parser.add_argument("--questions", type=Path, help="hand-written question<TAB>answers file to ask too")
    parser.add_argument("--init", type=Path, help="fine-tune this model (trained on another KG) instead of "
                                                   "training from scratch")
    parser.add_argument("--train-questions", type=int, help="train on this many of the generated "
                                                             "training questions (default: all)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.train_questions is not None and args.train_questions < 1:
        parser.error("--train-questions must be at least 1")
    if not args.kb.exists():
        sys.exit(f"error: {args.kb}: no such file")
    os.environ["KQA_HOME"] = str(args.home or tempfile.mkdtemp(prefix="kqa-generic-"))

    import kqa
    from kqa.answer import load_answerer
    from kqa.generate import GenerateConfig, generated_examples

    rows: list[tuple[str, str]] = []
    started = time.perf_counter()
    kqa.load_kg(args.kb, args.name)
    kqa.build_index(args.name)
    rows.append(("load + index seconds", f"{time.perf_counter() - started:.1f}"))
    started = time.perf_counter()
    trained = train(args.name, args.seed, args.init, args.train_questions)
    rows.append(("kqa train --generated seconds", f"{time.perf_counter() - started:.1f}"))
    graph = kqa.open_kg(args.name).graph
    rows.append(("KG: triples / nodes / relations", f"{len(graph.src):,} / {graph.num_nodes:,} / {graph.num_relations}"))
    rows.append(("training questions / validation Hits@1", f"{trained.examples:,} / {trained.val_hits1:.4f}"))

    guess = majority_answers(generated_examples(args.name, GenerateConfig(seed=args.seed)))
    held_out = generated_examples(args.name, GenerateConfig(split="test", seed=1))
    answerer = load_answerer(args.name, Path(trained.model_dir))
    hits: dict[str, list[bool]] = defaultdict(list)
    baseline: dict[str, list[bool]] = defaultdict(list)
    started = time.perf_counter()
    for e in held_out:
        result = answerer.ask(e.text)
        hits[hop_kind(e.group)].append(bool(result.answers) and result.answers[0].node in set(e.answers))
        baseline[hop_kind(e.group)].append(guess.get(e.group) in set(e.answers))
    rows.append(("held-out wordings asked, seconds", f"{time.perf_counter() - started:.1f}"))
    for kind in sorted(hits):
        n = len(hits[kind])
        rows.append((f"{kind} Hits@1, held-out wordings (n={n})",
                     f"{100 * sum(hits[kind]) / n:.2f} (baseline, the path's most frequent answer: "
                     f"{100 * sum(baseline[kind]) / n:.2f})"))
    if args.questions:
        rows += hand_written(answerer, args.questions)
    report(f"{args.name}: a KG without templates", rows, args.json)


def train(name: str, seed: int, init: Path | None, count: int | None) -> Any:
    """``kqa train --generated`` (with ``--init``), or on ``count`` of its questions only."""
    import kqa

    if count is None:
        return kqa.train(name, generated=True, seed=seed, init=init)
    import random

    from kqa.answer import train_model
    from kqa.api import resolve_model
    from kqa.generate import GenerateConfig, generated_examples
    from kqa.training import TrainConfig

    pool = generated_examples(name, GenerateConfig(seed=seed))
    subset = random.Random(seed).sample(pool, min(count, len(pool)))
    return train_model(name, [], resolve_model(name, None), init=init, config=TrainConfig(seed=seed),
                       extra_examples=subset)


def hand_written(answerer: Any, path: Path) -> list[tuple[str, str]]:
    """Hits@1 on the questions of ``path`` asked as typed (linked), and each one missed."""
    rows, right = [], 0
    lines = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for question, answers in lines:
        result = answerer.ask(question)
        top = result.answers[0].name if result.answers else None
        if top in answers.split("|"):
            right += 1
        else:
            rows.append((f"  missed: {question}", f"{top} ({result.confidence:.2f})"))
    return [(f"hand-written questions Hits@1 (n={len(lines)})", f"{100 * right / len(lines):.2f}"), *rows]


if __name__ == "__main__":
    main()
