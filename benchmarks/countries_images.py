"""Image questions answered from knowledge, on the bundled countries KG.

    python benchmarks/countries_images.py [--json] [--fusions gated,concat,cross-attention]
                                          [--epochs 12] [--home DIR] [--no-baseline]
                                          [--recognise-photos N] [--recognise-size PX]
                                          [--recognise-epochs N] [--recogniser-from MODEL]
                                          [--models DIR] [--model DIR]

Builds the pack, loads it, indexes it and trains one model per fusion strategy on questions
generated from the KG (training templates, training distortion mix and backgrounds). The test
set is generated with a different seed, the held-out templates ("!" in the manifest) and the
held-out distortion mix with background photos training never saw. Prints Hits@1 per question
kind (which country, capital, region, subregion, neighbours, neighbours' capitals, ...) for
image questions and for text-only questions (entity named in the text, linked, no brackets),
the same text questions with one typo each, the confidence on pictures that show no country,
and the fact-search baseline on the text questions. ``--model DIR`` evaluates a model trained
before instead (the one ``make app`` trains: ``$KQA_HOME/models/countries``, with ``--home``).
Targets: image questions ≥ 95 % overall; text-only ≥ 98 %.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Rows, REPO, peak_rss_mb, report  # noqa: E402

KINDS = {"identity": "which country", "image:capital": "capital", "image:region": "region",
         "image:subregion": "subregion", "image:borders": "neighbours",
         "image:borders>capital": "neighbours' capitals"}


def with_typos(examples, seed: int = 7):  # type: ignore[no-untyped-def]
    """Copies of text questions with one typo each (:func:`kqa.generate.add_typo`) outside the
    entity's name: held-out phrasings as people type them."""
    import copy

    from kqa.generate import add_typo

    rng = np.random.default_rng(seed)
    out = []
    for e in examples:
        start, end = e.mention_spans[0] if e.mention_spans else (len(e.text), len(e.text))
        name = e.text[start:end]
        slipped = copy.copy(e)
        slipped.text = add_typo(e.text[:start] + "{x}" + e.text[end:], rng).replace("{x}", name, 1)
        slipped.states = slipped.pooled = None
        out.append(slipped)
    return out


def as_read(answerer, examples):  # type: ignore[no-untyped-def]
    """Copies of the examples with their text as ``ask`` reads it (:meth:`Answerer.read`:
    hyphenated schema words joined, slips corrected), nothing encoded yet."""
    import copy

    out = []
    for e in examples:
        read = copy.copy(e)
        read.text = answerer.read(e.text)
        read.states = read.pooled = read.image_feature = None
        out.append(read)
    return out


def confidence_rows(answerer, test, text_kinds: list[str], per_kind: int = 300) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """Whether ``ask``'s confidence tells right answers from wrong ones: the mean on country
    pictures and on pictures of no country, and the AUROC of confidence against the top
    answer being right (0.5: no better than chance) over the first ``per_kind`` image and
    text questions of the test set and every picture of no country."""
    from sklearn.metrics import roc_auc_score

    from kqa.answer import LOW_CONFIDENCE

    images = [e for e in test if e.image is not None and e.group != "no entity"][:per_kind]
    texts = [e for e in test if e.group in text_kinds][:per_kind]
    nothing = [e for e in test if e.group == "no entity"]
    confidence, right, group = [], [], []
    for e in images + texts + nothing:
        result = answerer.ask(e.text, image=e.image)
        confidence.append(result.confidence)
        right.append(bool(result.answers) and e.group != "no entity" and result.answers[0].node in set(e.answers))
        group.append("none" if e.group == "no entity" else "image" if e.image is not None else "text")
    confidence_a, right_a, group_a = np.array(confidence), np.array(right), np.array(group)
    wrong = ~right_a & (group_a != "none")
    return [("mean confidence: country pictures / pictures of no country",
             f"{confidence_a[group_a == 'image'].mean():.2f} / {confidence_a[group_a == 'none'].mean():.2f}"),
            (f"pictures of no country answered with low confidence (< {LOW_CONFIDENCE})",
             f"{100 * (confidence_a[group_a == 'none'] < LOW_CONFIDENCE).mean():.1f} %"),
            (f"mean confidence: right / wrong answers (n={right_a.sum()} / {wrong.sum()})",
             f"{confidence_a[right_a].mean():.2f} / {confidence_a[wrong].mean():.2f}" if wrong.any() else "-"),
            ("confidence AUROC, right vs wrong or no country (0.5 = chance)",
             f"{roc_auc_score(right_a, confidence_a):.3f}" if 0 < right_a.sum() < len(right_a) else "-")]


# pictures of no country that neither training's nor the test set's scenes are taken from
# (kqa.augment.PHOTOS): other scikit-image sample pictures, whole
UNSEEN_PICTURES = ("cell.png", "chessboard_RGB.png", "clock_motion.png", "color.png", "horse.png",
                   "hubble_deep_field.jpg", "ihc.png", "logo.png", "microaneurysms.png", "moon.png",
                   "page.png", "phantom.png", "retina.jpg", "text.png")
UNSEEN_QUESTIONS = ("which country is this", "what is the capital of this country",
                    "which countries border this country")


def unseen_picture_rows(answerer) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """``ask`` about pictures of no country unlike every scene of training and of the test
    set: the mean confidence, and how many answers say their confidence is low."""
    import importlib.util

    from PIL import Image

    from kqa.answer import LOW_CONFIDENCE

    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        return [("pictures of no country outside every scene set", "skipped: scikit-image is not installed")]
    folder = Path(list(spec.submodule_search_locations)[0]) / "data"
    pictures = [Image.open(folder / name).convert("RGB") for name in UNSEEN_PICTURES if (folder / name).is_file()]
    confidence = np.array([answerer.ask(q, image=picture).confidence for picture in pictures
                           for q in UNSEEN_QUESTIONS])
    return [(f"pictures of no country outside every scene set ({len(pictures)} × {len(UNSEEN_QUESTIONS)} "
             "questions): mean confidence / low confidence",
             f"{confidence.mean():.2f} / {100 * (confidence < LOW_CONFIDENCE).mean():.1f} %")]


def evaluate(label: str, model: Path, test, image_kinds: list[str], text_kinds: list[str]  # type: ignore[no-untyped-def]
             ) -> list[tuple[str, object]]:
    """Rows of one trained model's figures on the test set: Hits@1 overall and per kind for
    image and text-only questions, text with one typo each, and what its confidence tells."""
    from kqa.answer import encode_images, load_answerer
    from kqa.training import encode_examples

    rows: list[tuple[str, object]] = []
    answerer = load_answerer("countries", model)
    asked = as_read(answerer, test)
    encode_examples(asked, answerer.text)  # type: ignore[arg-type]
    encode_images(asked, answerer.image_features)
    result = answerer.evaluate(asked, gold_topics=False)
    groups = result.per_group
    image_n = sum(groups[k]["n"] for k in image_kinds if k in groups)
    image_hits = sum(groups[k]["hits@1"] * groups[k]["n"] for k in image_kinds if k in groups)
    text_n = sum(groups[k]["n"] for k in text_kinds if k in groups)
    text_hits = sum(groups[k]["hits@1"] * groups[k]["n"] for k in text_kinds if k in groups)
    image_score, text_score = image_hits / max(image_n, 1), text_hits / max(text_n, 1)
    rows.append((f"[{label}] image questions Hits@1 (n={image_n})",
                 f"{image_score * 100:.2f} ({'met' if image_score >= 0.95 else 'MISSED'} >= 95)"))
    for kind in image_kinds:
        if kind in groups:
            rows.append((f"[{label}]   {KINDS.get(kind, kind)} (n={groups[kind]['n']})",
                         f"{groups[kind]['hits@1'] * 100:.2f}"))
    rows.append((f"[{label}] text-only questions Hits@1 (n={text_n})",
                 f"{text_score * 100:.2f} ({'met' if text_score >= 0.98 else 'MISSED'} >= 98)"))
    for kind in text_kinds:
        if kind in groups:
            rows.append((f"[{label}]   {kind} (n={groups[kind]['n']})", f"{groups[kind]['hits@1'] * 100:.2f}"))
    slipped = as_read(answerer, with_typos([e for e in test if e.group in text_kinds]))
    encode_examples(slipped, answerer.text)  # type: ignore[arg-type]
    typo_result = answerer.evaluate(slipped, gold_topics=False)
    rows.append((f"[{label}] text-only, one typo per question, Hits@1 (n={typo_result.n})",
                 f"{typo_result.hits1 * 100:.2f}"))
    rows.extend((f"[{label}] {k}", v) for k, v in confidence_rows(answerer, test, text_kinds))
    rows.extend((f"[{label}] {k}", v) for k, v in unseen_picture_rows(answerer))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--fusions", default="gated,concat,cross-attention")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--home", help="KQA_HOME to use (default: a fresh temporary one).")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--recognise-photos", type=int, help="Recogniser photos per entity (default: kqa's).")
    parser.add_argument("--recognise-size", type=int, help="Recogniser input side (default: kqa's).")
    parser.add_argument("--recognise-epochs", type=int, help="Recogniser epochs (default: kqa's).")
    parser.add_argument("--recogniser-from", help="Reuse this trained model's recogniser (answer-model "
                                                  "experiments without the slow part).")
    parser.add_argument("--models", help="Keep the trained models in this folder (default: a temporary one).")
    parser.add_argument("--model", help="Evaluate this trained model (e.g. the set-up's, "
                                        "$KQA_HOME/models/countries) instead of training per fusion.")
    args = parser.parse_args()
    rows = Rows()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["KQA_HOME"] = args.home or tmp
        import kqa
        from kqa.generate import GenerateConfig, generated_examples

        subprocess.run([sys.executable, str(REPO / "knowledge" / "countries" / "build.py")], check=True,
                       capture_output=True)
        if "countries" not in [i.name for i in kqa.list_kgs()]:
            kqa.load_kg(REPO / "knowledge" / "countries", "countries")
        start = time.perf_counter()
        kqa.build_index("countries")
        rows.append(("index build seconds", time.perf_counter() - start))
        test = generated_examples("countries", GenerateConfig(seed=1000, split="test", mix="test",
                                                               per_path=1, identity_per_entity=1,
                                                               negatives=0.05))
        image_kinds = sorted({e.group for e in test if e.group.startswith("image:") or e.group == "identity"})
        text_kinds = sorted({e.group for e in test if e.group.startswith("text:")})
        rows.append(("test questions (image / text / no-entity pictures)",
                     f"{sum(e.group in image_kinds for e in test)} / {sum(e.group in text_kinds for e in test)} / "
                     f"{sum(e.group == 'no entity' for e in test)}"))
        if args.model:
            rows.extend(evaluate(Path(args.model).name, Path(args.model), test, image_kinds, text_kinds))
        for fusion in ([] if args.model else args.fusions.split(",")):
            out = Path(args.models or Path(tmp) / "models") / f"countries-{fusion}"
            start = time.perf_counter()
            recognise = {k: v for k, v in (("views_per_entity", args.recognise_photos),
                                           ("size", args.recognise_size),
                                           ("epochs", args.recognise_epochs)) if v is not None}
            trained = kqa.train("countries", generated=True, out=out, fusion=fusion, epochs=args.epochs,
                                recognise=recognise, recogniser_from=args.recogniser_from)
            rows.append((f"[{fusion}] training seconds ({trained.examples} questions)", time.perf_counter() - start))
            recogniser = json.loads((out / "config.json").read_text(encoding="utf-8")).get("recogniser")
            if recogniser:
                reused = f" (reused from {recogniser['from']})" if recogniser.get("from") else ""
                rows.append((f"[{fusion}] recogniser: seconds, photos, held-out top-1 (look-alikes count)",
                             f"{recogniser['seconds']:.0f}, {recogniser['views']}, "
                             f"{recogniser['val_accuracy'] * 100:.2f}{reused}"))
            rows.extend(evaluate(fusion, out, test, image_kinds, text_kinds))
        if not args.no_baseline:
            from _baseline import FactSearch, hits_at_1
            from kqa.graph import load_graph

            search = FactSearch(load_graph("countries"))
            text_examples = [e for e in test if e.group in text_kinds]
            rows.append(("fact-search baseline, text-only Hits@1", f"{hits_at_1(search, text_examples) * 100:.2f}"))
        rows.append(("peak memory MB", peak_rss_mb()))
    report("countries: image and text questions", rows, args.json)


if __name__ == "__main__":
    main()
