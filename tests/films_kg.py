"""A small synthetic film KG with templated questions, for tests that train real models.

Deterministic for a seed; big enough that guessing is hopeless (hundreds of candidate
answers), small enough to train on in seconds.
"""

from __future__ import annotations

import random
from pathlib import Path

GENRES = ["Drama", "Comedy", "Horror", "Western", "Musical"]
FIRST = ["Ava", "Boris", "Clara", "Dmitri", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas",
         "Kira", "Lars", "Mona", "Nils", "Olga", "Pavel", "Quinn", "Rosa", "Sven", "Tara"]
LAST = ["Abbott", "Berg", "Castillo", "Dahl", "Eriksen", "Fischer", "Gallo", "Holm", "Ivanova",
        "Jensen", "Kovacs", "Lind", "Moreau", "Novak", "Olsen", "Petrov"]
WORDS = ["Silent", "Red", "Winter", "Lost", "Golden", "Broken", "Hidden", "Last", "Wild", "Blue",
         "River", "Night", "Garden", "Storm", "Harbor", "Mirror", "Empire", "Shadow", "Summer", "Iron"]

ONE_HOP = {
    "directed_by": ["who directed [{x}]", "which person directed [{x}]", "[{x}] was directed by whom"],
    "~directed_by": ["what films did [{x}] direct", "which movies were directed by [{x}]"],
    "starred_actors": ["who acted in [{x}]", "which actors starred in [{x}]"],
    "~starred_actors": ["what films did [{x}] act in", "which movies star [{x}]"],
    "has_genre": ["what genre is [{x}]", "which genre does [{x}] belong to"],
}
TWO_HOP = {
    ("~directed_by", "has_genre"): ["what genres are the films directed by [{x}]",
                                    "which genres do movies by director [{x}] have"],
    ("~starred_actors", "directed_by"): ["who directed the films starring [{x}]",
                                         "which directors made movies with [{x}]"],
    ("directed_by", "~directed_by"): ["which films share the director of [{x}]",
                                      "what other movies did the director of [{x}] make"],
}


def build(folder: Path, seed: int = 0, films: int = 60) -> dict[str, Path]:
    """Write kb.tsv, train.txt and test.txt (MetaQA format) into ``folder``."""
    rng = random.Random(seed)
    people = [f"{f} {l}" for f in FIRST for l in LAST]
    rng.shuffle(people)
    directors, actors = people[:18], people[18:70]
    titles = set()
    while len(titles) < films:
        titles.add(f"{rng.choice(WORDS)} {rng.choice(WORDS)}")
    titles_list = sorted(titles)
    triples = []
    for title in titles_list:
        triples.append((title, "directed_by", rng.choice(directors)))
        for actor in rng.sample(actors, 2):
            triples.append((title, "starred_actors", actor))
        triples.append((title, "has_genre", rng.choice(GENRES)))
    folder.mkdir(parents=True, exist_ok=True)
    kb = folder / "kb.tsv"
    kb.write_text("".join(f"{s}\t{r}\t{o}\n" for s, r, o in triples), encoding="utf-8")
    questions = _questions(triples, rng)
    rng.shuffle(questions)
    cut = int(len(questions) * 0.8)
    paths = {"kb": kb, "train": folder / "train.txt", "test": folder / "test.txt"}
    for name, part in (("train", questions[:cut]), ("test", questions[cut:])):
        paths[name].write_text("".join(f"{q}\t{'|'.join(sorted(a))}\n" for q, a in part), encoding="utf-8")
    return paths


def _follow(triples: list[tuple[str, str, str]], node: str, slot: str) -> set[str]:
    if slot.startswith("~"):
        return {s for s, r, o in triples if r == slot[1:] and o == node}
    return {o for s, r, o in triples if r == slot and s == node}


def _questions(triples: list[tuple[str, str, str]], rng: random.Random) -> list[tuple[str, set[str]]]:
    out = []
    nodes = sorted({s for s, _, _ in triples} | {o for _, _, o in triples})
    for node in nodes:
        for slot, templates in ONE_HOP.items():
            answers = _follow(triples, node, slot)
            if answers:
                out.append((rng.choice(templates).format(x=node), answers))
        for (first, second), templates in TWO_HOP.items():
            middle = _follow(triples, node, first)
            answers = {a for m in middle for a in _follow(triples, m, second)} - {node}
            if middle and answers:
                out.append((rng.choice(templates).format(x=node), answers))
    return out
