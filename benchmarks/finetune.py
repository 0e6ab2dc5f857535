"""Cross-domain fine-tuning: start a new KG from a model trained on another one.

    python benchmarks/finetune.py [--json] [--source MODEL_DIR] [--target-questions 100,300]
                                  [--epochs 8] [--seeds 0,...,9] [--min-steps N]

Source: a model trained on MetaQA movies (given with --source, else a quick one is trained
here on 6,000 MetaQA questions and 6,000 questions generated from the movies KG: a source that
has read the generator's wordings passes its reading on, kqa.answer.not_passed_on). Target:
the countries KG (other entities, other relations) with a small training set of text
questions generated from it (training templates), evaluated on held-out generated questions
(held-out templates, entities linked from the text). The same target data, epochs and seeds
train a model from scratch; the table shows both, and the gain paired by seed (its mean, the
standard error of that mean, and how many seeds it won).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Rows, REPO, report, require_metaqa  # noqa: E402


def quick_source(metaqa: Path, folder: Path) -> Path:
    import kqa

    if "movies" not in [i.name for i in kqa.list_kgs()]:
        kqa.load_kg(metaqa / "kb.txt", "movies")
    kqa.build_index("movies")
    files = []
    for hop in ("1-hop", "2-hop", "3-hop"):
        lines = (metaqa / hop / "qa_dev.txt").read_text(encoding="utf-8").splitlines()
        random.Random(0).shuffle(lines)
        path = folder / f"{hop}.txt"
        path.write_text("\n".join(lines[:2000]) + "\n", encoding="utf-8")
        files.append(path)
    out = folder / "movies-source"
    kqa.train("movies", files, out=out, epochs=4, generated=True, generate={"max_questions": 6000})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--source", help="A trained movies model (default: train a quick one).")
    parser.add_argument("--target-questions", default="100,300",
                        help="Target training-set sizes, comma-separated (each its own comparison).")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seeds", default="0,1,2,3,4,5,6,7,8,9",
                        help="One target training set and two trainings per seed (paired).")
    parser.add_argument("--home", help="KQA_HOME to use (default: a fresh temporary one).")
    parser.add_argument("--ema", type=float, default=0.99,
                        help="Decay of the weights' moving average (0: off).")
    parser.add_argument("--min-steps", type=int, default=None,
                        help="Optimiser steps at least, however small the target set (default: kqa's).")
    args = parser.parse_args()
    metaqa = require_metaqa()
    rows = Rows()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["KQA_HOME"] = args.home or tmp
        import kqa
        from kqa.generate import GenerateConfig, generated_examples

        source = Path(args.source) if args.source else quick_source(metaqa, Path(tmp))
        subprocess.run([sys.executable, str(REPO / "knowledge" / "countries" / "build.py")], check=True,
                       capture_output=True)
        if "countries" not in [i.name for i in kqa.list_kgs()]:
            kqa.load_kg(REPO / "knowledge" / "countries", "countries")
        kqa.build_index("countries", kinds=("entities", "relations"))
        text_only = {"image_share": 0.0, "identity_per_entity": 0, "negatives": 0.0}
        pool = [e for e in generated_examples("countries", GenerateConfig(seed=7, **text_only)) if e.answers]
        test = [e for e in generated_examples("countries", GenerateConfig(seed=99, split="test", per_path=1,
                                                                           **text_only)) if e.answers]
        for size in [int(n) for n in str(args.target_questions).split(",")]:
            compare(source, pool, test, size, args, Path(tmp), rows)
    report("cross-domain fine-tuning", rows, args.json)


def compare(source: Path, pool: list, test: list, size: int, args: argparse.Namespace, tmp: Path,
            rows: Rows) -> None:
    """The rows of one target-set size: each seed draws ``size`` training questions, on which
    a model is fine-tuned from ``source`` and another trained from scratch."""
    from kqa.answer import load_answerer
    from kqa.training import encode_examples

    rows.append((f"[{size}] target training questions / held-out questions", f"{size} / {len(test)}"))
    scores: dict[str, list[float]] = {"fine-tuned from movies": [], "from scratch": []}
    for seed in [int(s) for s in args.seeds.split(",")]:
        subset = random.Random(seed).sample(pool, min(size, len(pool)))
        for label, init in (("fine-tuned from movies", source), ("from scratch", None)):
            out = tmp / f"target-{size}-{seed}-{'init' if init else 'scratch'}"
            for e in subset:
                e.states = None
            start = time.perf_counter()
            _train("countries", subset, out, init, args.epochs, seed, args.ema, args.min_steps)
            answerer = load_answerer("countries", out)
            for e in test:
                e.states = None
            encode_examples(test, answerer.text)  # type: ignore[arg-type]
            result = answerer.evaluate(test, gold_topics=False)
            scores[label].append(result.hits1)
            rows.append((f"[{size}] seed {seed}: {label} Hits@1 ({time.perf_counter() - start:.0f}s)",
                         f"{result.hits1 * 100:.2f}"))
    for label, values in scores.items():
        rows.append((f"[{size}] mean Hits@1, {label}", f"{np.mean(values) * 100:.2f}"))
    for key, value in gain_rows(scores["fine-tuned from movies"], scores["from scratch"]):
        rows.append((f"[{size}] {key}", value))


def gain_rows(tuned: list[float], scratch: list[float]) -> list[tuple[str, str]]:
    """The gain of fine-tuning, paired by seed (each seed draws one target training set that
    both arms train on): its mean with the standard error of that mean, and on how many seeds
    fine-tuning won. A hundred questions over twenty question kinds are about five per kind, so
    which ones a seed draws moves a kind's Hits@1 by tens of points: one seed proves nothing."""
    gains = np.array(tuned) - np.array(scratch)
    error = gains.std(ddof=1) / np.sqrt(len(gains)) if len(gains) > 1 else float("nan")
    return [("fine-tuning gain (points, mean ± standard error over seeds)",
             f"{gains.mean() * 100:+.2f} ± {error * 100:.2f}"),
            ("seeds where fine-tuning won", f"{int((gains > 0).sum())} of {len(gains)}")]


def _train(kg: str, examples: list, out: Path, init: Path | None, epochs: int, seed: int,
           ema: float, min_steps: int | None) -> None:
    from kqa.answer import train_model
    from kqa.training import TrainConfig

    steps = {} if min_steps is None else {"min_steps": min_steps}
    train_model(kg, [], out, init=init, config=TrainConfig(epochs=epochs, seed=seed, val_fraction=0.0,
                                                            patience=epochs, ema=ema, **steps),
                extra_examples=examples)


if __name__ == "__main__":
    main()
