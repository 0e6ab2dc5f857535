"""A second image domain, built by no one who tuned kqa on it: easy-VQA's shapes as a KG.

    python benchmarks/shapes_images.py [--json] [--home DIR] [--model DIR] [--per-template N] [--seed 0]
                                       [--recognise-negatives SHARE]

easy-VQA (``pip install easy-vqa``: 5,000 64×64 pictures of one coloured shape, with questions
about them) becomes a KG the way a user would make one: 24 figures ("red triangle", ...) of
type ``figure``, each with one reference picture (of the first 500 training pictures of that
colour and shape, the one where the shape is largest), related by ``color`` to 8 colours and by ``shape`` to 3 shapes. There is no
knowledge pack, so ``kqa train --generated`` trains on the generic wordings read off the
relation names and the generic distortions of those 24 pictures. Then it asks easy-VQA's own
*test* questions about its own test pictures through ``Answerer.ask``: wordings that the
generator never wrote ("what color is the shape?", "what is the red shape?", "what shape does
the image contain?") and pictures the recogniser never saw (other sizes and places). Its
yes/no questions are left out: kqa answers with entities. Prints Hits@1 per question
template and per asked relation, the time of each step, and a baseline measured in the same
run: every question of a template answered with that template's most frequent answer among
easy-VQA's training questions.

Exits 0 with the reason when ``easy_vqa`` is not installed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Rows, peak_rss_mb, report  # noqa: E402

COLORS = ("red", "green", "blue", "black", "gray", "yellow", "teal", "brown")
SHAPES = ("circle", "rectangle", "triangle")


def data_dir() -> Path:
    """easy-VQA's data folder, or exit cleanly saying why the benchmark is skipped."""
    try:
        import easy_vqa
    except ImportError:
        print("skipped: easy-VQA is not installed (pip install easy-vqa==1.0)")
        sys.exit(0)
    return Path(easy_vqa.__file__).resolve().parent / "data"


def template(question: str) -> str:
    """The question with its colour and shape words replaced: easy-VQA's template."""
    for word in COLORS:
        question = re.sub(rf"\b{word}\b", "<color>", question)
    for word in SHAPES:
        question = re.sub(rf"\b{word}\b", "<shape>", question)
    return question


def read_split(data: Path, split: str) -> tuple[list[tuple[str, str, int]], dict[int, tuple[str, str]]]:
    """A split's questions (yes/no left out) and each picture's colour and shape, read off the
    answers of all its questions."""
    questions = json.loads((data / split / "questions.json").read_text(encoding="utf-8"))
    seen: dict[int, dict[str, str]] = defaultdict(dict)
    for _question, answer, image in questions:
        if answer in COLORS:
            seen[image]["color"] = answer
        elif answer in SHAPES:
            seen[image]["shape"] = answer
    pictures = {i: (s["color"], s["shape"]) for i, s in seen.items() if len(s) == 2}
    kept = [(q, a, i) for q, a, i in questions if a not in ("yes", "no")]
    return kept, pictures


def shown_share(path: Path) -> float:
    """The share of a picture that differs from its plain ground (read off its corner)."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
    return float((np.abs(pixels - pixels[0, 0]).max(-1) > 24).mean())


def write_kg(data: Path, pictures: dict[int, tuple[str, str]], folder: Path) -> Path:
    """The KG as ``jsongraph`` JSON: one figure per colour and shape, its reference picture the
    training picture of that combination where the shape is largest (of the first 500 training
    pictures), as someone choosing one clear picture per entity would."""
    reference: dict[tuple[str, str], int] = {}
    size: dict[tuple[str, str], float] = {}
    for image in sorted(pictures)[:500]:
        share = shown_share(data / "train" / "images" / f"{image}.png")
        if share > size.get(pictures[image], -1.0):
            reference[pictures[image]], size[pictures[image]] = image, share
    nodes: list[dict[str, Any]] = [{"id": c, "name": c, "type": "color"} for c in COLORS]
    nodes += [{"id": s, "name": s, "type": "shape"} for s in SHAPES]
    edges = []
    for (color, shape), image in sorted(reference.items()):
        figure = f"{color} {shape}"
        nodes.append({"id": figure, "name": figure, "type": "figure",
                      "image": str(data / "train" / "images" / f"{image}.png")})
        edges += [{"source": figure, "relation": "color", "target": color},
                  {"source": figure, "relation": "shape", "target": shape}]
    path = folder / "shapes.json"
    path.write_text(json.dumps({"name": "shapes", "relations": [{"id": "color", "name": "color"},
                                                                 {"id": "shape", "name": "shape"}],
                                "nodes": nodes, "edges": edges}, indent=1), encoding="utf-8")
    return path


def sample(questions: list[tuple[str, str, int]], per_template: int | None, seed: int
           ) -> list[tuple[str, str, int]]:
    """At most ``per_template`` questions of each template, drawn with the seed."""
    if per_template is None:
        return questions
    by: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    for q in questions:
        by[template(q[0])].append(q)
    rng = random.Random(seed)
    return [q for t in sorted(by) for q in rng.sample(by[t], min(per_template, len(by[t])))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", help="KQA_HOME to use (default: a fresh temporary one)")
    parser.add_argument("--model", help="evaluate this model (trained on the KG in --home) instead of training")
    parser.add_argument("--per-template", type=int, help="ask at most this many test questions per template")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--recognise-negatives", type=float, help="the recogniser's share of pictures of "
                                                                   "nothing (default: kqa's)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    data = data_dir()
    os.environ["KQA_HOME"] = args.home or tempfile.mkdtemp(prefix="kqa-shapes-")
    import kqa
    from kqa.answer import load_answerer

    rows = Rows()
    train_questions, train_pictures = read_split(data, "train")
    test_questions, _ = read_split(data, "test")
    if "shapes" not in [i.name for i in kqa.list_kgs()]:
        started = time.perf_counter()
        kqa.load_kg(write_kg(data, train_pictures, Path(os.environ["KQA_HOME"])), "shapes")
        kqa.build_index("shapes")
        rows.append(("load + index seconds", time.perf_counter() - started))
    model = Path(args.model) if args.model else None
    if model is None:
        started = time.perf_counter()
        recognise = {} if args.recognise_negatives is None else {"negatives": args.recognise_negatives}
        trained = kqa.train("shapes", generated=True, seed=args.seed, recognise=recognise)
        model = Path(trained.model_dir)
        recogniser = json.loads((model / "config.json").read_text(encoding="utf-8")).get("recogniser") or {}
        rows.append(("kqa train --generated seconds", time.perf_counter() - started))
        rows.append(("training questions / validation Hits@1 / recogniser held-out top-1",
                     f"{trained.examples:,} / {trained.val_hits1:.4f} / "
                     f"{recogniser.get('val_accuracy', float('nan')):.4f}"))
    answerer = load_answerer("shapes", model)
    majority = {t: c.most_common(1)[0][0] for t, c in _answers_by_template(train_questions).items()}
    asked = sample(test_questions, args.per_template, 1)
    hits: dict[str, list[bool]] = defaultdict(list)
    baseline: dict[str, list[bool]] = defaultdict(list)
    confidence: dict[bool, list[float]] = defaultdict(list)
    nothing: list[bool] = []  # the picture taken for one of no known entity ("none of these" ≥ 0.5)
    started = time.perf_counter()
    for question, answer, image in asked:
        result = answerer.ask(question, image=data / "test" / "images" / f"{image}.png")
        right = bool(result.answers) and result.answers[0].name == answer
        kind = "color" if answer in COLORS else "shape"
        for key in (template(question), f"asks the {kind}", "all"):
            hits[key].append(right)
            baseline[key].append(majority.get(template(question)) == answer)
        confidence[right].append(float(result.confidence))
        nothing.append((result.nothing_shown or 0.0) >= 0.5)
    rows.append(("test questions asked (easy-VQA test pictures), seconds per question",
                 f"{len(asked):,}, {(time.perf_counter() - started) / max(len(asked), 1):.3f}"))
    for key in sorted(hits, key=lambda k: (k != "all", not k.startswith("asks"), k)):
        n = len(hits[key])
        rows.append((f"Hits@1 {key} (n={n})", f"{100 * sum(hits[key]) / n:.2f} (baseline, the template's "
                                               f"most frequent training answer: {100 * sum(baseline[key]) / n:.2f})"))
    for right in (True, False):
        values = confidence[right]
        if values:
            rows.append((f"mean confidence, {'right' if right else 'wrong'} answers (n={len(values)})",
                         f"{sum(values) / len(values):.3f}"))
    rows.append(("test pictures taken to show none of the known entities (none of these >= 0.5)",
                 f"{100 * sum(nothing) / max(len(nothing), 1):.2f} %"))
    rows.append(("peak memory MB", peak_rss_mb()))
    report("shapes (easy-VQA as a KG): another image domain, its own questions", rows, args.json)


def _answers_by_template(questions: list[tuple[str, str, int]]) -> dict[str, Counter[str]]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for question, answer, _image in questions:
        counts[template(question)][answer] += 1
    return counts


if __name__ == "__main__":
    main()
