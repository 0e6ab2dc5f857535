"""Countries questions worded as a person would word them, answered by a trained model.

    python benchmarks/countries_phrasings.py [--model DIR] [--home DIR] [--per-phrasing 12]
                                             [--failures 5] [--json]

The phrasings (``benchmarks/phrasings/countries.json``) were written by hand, apart from the
knowledge pack's templates, and are never used for training: where the countries benchmark
measures the pack's held-out templates, this measures phrasings outside the pack altogether
(possessives, a trailing "?", a bare noun phrase, verbs the templates never use). Each phrasing
is asked about randomly chosen countries (fixed seed) with the country named in the text and
linked as ``kqa ask`` links it (no brackets); the gold answers come from the KG. Prints Hits@1
per relation path and overall, and the first failures with what the model read.
A phrasing identical to one of the pack's templates is left out and counted.

Then questions the KG holds no fact for ("who is the president of X"; the file's
``unanswerable`` list): the share answered with a confidence at or above ``ask``'s low-confidence
line, against the share of right answers above it, and how well ``ask``'s familiarity (the
nearest training question's wording, entity left out: :mod:`kqa.familiar`; below the model's
line the confidence is capped) tells answerable from unanswerable ones (AUROC).

Needs a trained countries model (``make prepare``, or ``kqa train --kg countries --generated``)
in the given ``KQA_HOME``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, report  # noqa: E402

PHRASINGS = Path(__file__).resolve().parent / "phrasings" / "countries.json"


def pack_templates() -> set[str]:
    """Every question template of the countries pack, held-out ones included."""
    manifest = json.loads((REPO / "knowledge" / "countries" / "manifest.json").read_text(encoding="utf-8"))
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, str):
            found.add(node.lstrip("!").lower())
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(manifest.get("questions", {}))
    return found


def questions(graph, paths: dict[str, list[str]], per_phrasing: int, seed: int  # type: ignore[no-untyped-def]
              ) -> tuple[dict[str, list[tuple[str, set[str]]]], int]:
    """Per relation path, (question, gold answer names); and how many phrasings were left out
    for being one of the pack's templates."""
    relation = {name: i for i, name in enumerate(graph.relation_names)}
    facts: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for s, r, d in zip(graph.src.tolist(), graph.rel.tolist(), graph.dst.tolist()):
        facts[r][s].append(d)
    countries = sorted(facts[relation["capital"]])
    known = pack_templates()
    rng = random.Random(seed)
    out: dict[str, list[tuple[str, set[str]]]] = {}
    skipped = 0
    for path, phrasings in paths.items():
        steps = [relation[name] for name in path.split(">")]
        rows = []
        for phrasing in phrasings:
            if phrasing.lower() in known:
                skipped += 1
                continue
            for x in rng.sample(countries, per_phrasing):
                frontier = {x}
                for step in steps:
                    frontier = {d for n in frontier for d in facts[step].get(n, [])}
                if frontier:
                    rows.append((phrasing.format(x=graph.node_names[x]),
                                 {graph.node_names[n] for n in frontier}))
        out[path] = rows
    return out, skipped


def unanswerable_rows(answerer, phrasings: dict[str, object],  # type: ignore[no-untyped-def]
                      answerable: list[tuple[bool, float, float | None]], seed: int, per_phrasing: int = 4
                      ) -> list[tuple[str, object]]:
    """Questions the KG holds no fact for: how often ``ask`` is confident anyway, against how
    often it is confident when right (``answerable``: (right, confidence, familiarity) per
    answerable question), and how far ``ask``'s familiarity (:mod:`kqa.familiar`) tells the
    two apart (AUROC; absent for a model saved without a familiarity bank)."""
    from kqa.answer import LOW_CONFIDENCE

    rng = random.Random(seed)
    countries = [answerer.graph.node_names[n] for n in sorted(answerer.graph.images)]
    unanswerable = [p.format(x=x) for p in phrasings["unanswerable"]  # type: ignore[attr-defined]
                    for x in rng.sample(countries, per_phrasing)]
    results = [answerer.ask(q) for q in unanswerable]
    confident = sum(r.confidence >= LOW_CONFIDENCE for r in results) / len(results)
    right_confidence = [c for right, c, _f in answerable if right]
    rows: list[tuple[str, object]] = [
        (f"unanswerable questions answered with confidence >= {LOW_CONFIDENCE} (n={len(results)})", confident),
        (f"right answers with confidence >= {LOW_CONFIDENCE} (answerable questions above)",
         sum(c >= LOW_CONFIDENCE for c in right_confidence) / max(len(right_confidence), 1))]
    known = [f for _r, _c, f in answerable if f is not None]
    unknown = [r.familiarity for r in results if r.familiarity is not None]
    if known and unknown:
        line = answerer.familiarity.threshold
        rows += [("familiarity mean, answerable / unanswerable", f"{np.mean(known):.3f} / {np.mean(unknown):.3f}"),
                 (f"below the model's familiarity line {line:.3f}: answerable / unanswerable",
                  f"{np.mean(np.array(known) < line):.3f} / {np.mean(np.array(unknown) < line):.3f}"),
                 ("familiarity AUROC answerable vs unanswerable", auroc(known, unknown))]
    return rows


def auroc(positive: list[float], negative: list[float]) -> float:
    pos, neg = np.asarray(positive)[:, None], np.asarray(negative)[None, :]
    return float(((pos > neg) + 0.5 * (pos == neg)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="Model folder (default $KQA_HOME/models/countries).")
    parser.add_argument("--home", help="KQA_HOME holding the countries KG and model.")
    parser.add_argument("--per-phrasing", type=int, default=12, help="Countries asked about per phrasing.")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--failures", type=int, default=5, help="Failures shown per relation path.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.home:
        os.environ["KQA_HOME"] = args.home
    from kqa.answer import load_answerer
    from kqa.config import default_model_dir

    model = Path(args.model) if args.model else default_model_dir("countries")
    if not (model / "config.json").is_file():
        sys.exit(f"no trained countries model at {model}: run `make prepare` or "
                 f"`kqa train --kg countries --generated` first")
    answerer = load_answerer("countries", model)
    phrasings = json.loads(PHRASINGS.read_text(encoding="utf-8"))
    asked, skipped = questions(answerer.graph, phrasings["phrasings"], args.per_phrasing, args.seed)
    rows: list[tuple[str, object]] = [("phrasings left out (one of the pack's templates)", skipped)]
    failures: dict[str, list[dict[str, object]]] = {}
    hits = total = 0
    answerable: list[tuple[bool, float, float | None]] = []  # (right, confidence, familiarity)
    started = time.perf_counter()
    for path, pairs in asked.items():
        right = 0
        for question, gold in pairs:
            result = answerer.ask(question)
            best = result.answers[0].name if result.answers else None
            right += best in gold
            answerable.append((best in gold, result.confidence, result.familiarity))
            if best not in gold and len(failures.setdefault(path, [])) < args.failures:
                failures[path].append({"question": question, "answered": best,
                                       "gold": sorted(gold)[:3],
                                       "topic": result.topic[0]["name"] if result.topic else None,
                                       "relations": result.relations[0][:2], "hops": result.hop_probs,
                                       "type": result.answer_type[:2]})
        rows.append((f"Hits@1 {path} (n={len(pairs)})", right / max(len(pairs), 1)))
        hits, total = hits + right, total + len(pairs)
    rows.append((f"Hits@1 all (n={total})", hits / max(total, 1)))
    rows.append(("mean seconds per question (ask, warm)", (time.perf_counter() - started) / max(total, 1)))
    rows.extend(unanswerable_rows(answerer, phrasings, answerable, args.seed))
    report("countries: hand-written phrasings", rows, args.json,
           {"failures": failures} if args.json else None)
    if not args.json:
        for path, items in failures.items():
            print(f"failures, {path}:")
            for item in items:
                print(f"  {item['question']!r} → {item['answered']!r} (gold {item['gold']}); linked "
                      f"{item['topic']!r}, read {item['relations']}, hops {item['hops']}, type {item['type']}")


if __name__ == "__main__":
    main()
