"""Load the MetaQA KB into a fresh KQA_HOME and report speed, counts and memory.

    python benchmarks/load_metaqa.py [--json] [--database-url URL]

Targets (issue: foundation): load ≤ 30 s on 2 cores; reload after a restart with the graph view
(networkx included) ready ≤ 3 s. The baseline, measured in the same run, is the least any
loader must do: read the file and build a networkx MultiDiGraph straight from it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_mb, report, require_metaqa  # noqa: E402

RELOAD = """
import time, sys
start = time.perf_counter()
import kqa
from kqa.graph import load_graph
graph = load_graph("movies")
nx_graph = graph.nx
print(time.perf_counter() - start, nx_graph.number_of_edges())
"""


def baseline(kb: Path) -> float:
    import networkx as nx

    start = time.perf_counter()
    graph = nx.MultiDiGraph()
    with open(kb, encoding="utf-8") as fh:
        graph.add_edges_from((s, o, r) for s, r, o in (line.rstrip("\n").split("|") for line in fh))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--database-url", help="Store in this database instead of SQLite.")
    args = parser.parse_args()
    kb = require_metaqa() / "kb.txt"
    with tempfile.TemporaryDirectory() as home:
        os.environ["KQA_HOME"] = home
        if args.database_url:
            os.environ["KQA_DATABASE_URL"] = args.database_url
        import kqa

        if args.database_url and "movies" in [i.name for i in kqa.list_kgs()]:
            kqa.drop_kg("movies")
        base = baseline(kb)
        start = time.perf_counter()
        summary = kqa.load_kg(kb, "movies")
        seconds = time.perf_counter() - start
        info = kqa.open_kg("movies").info()
        reload = subprocess.run([sys.executable, "-c", RELOAD], env=dict(os.environ), capture_output=True,
                                text=True, check=True).stdout.split()
        if args.database_url:
            kqa.drop_kg("movies")
    rows = [
        ("store", "PostgreSQL" if args.database_url else "SQLite"),
        ("triples", info.triples), ("entities", info.entities), ("relations", info.relations),
        ("load seconds", seconds), ("triples per second", info.triples / seconds),
        ("baseline seconds (parse + networkx build)", base), ("load / baseline", seconds / base),
        ("reload seconds (new process, graph + networkx ready)", float(reload[0])),
        ("peak memory MB", peak_rss_mb()),
        ("target load <= 30 s", "met" if seconds <= 30 else "MISSED"),
        ("target reload <= 3 s", "met" if float(reload[0]) <= 3 else "MISSED"),
    ]
    report("MetaQA KB load", rows, args.json, {"duplicates_skipped": summary.duplicates_skipped})


if __name__ == "__main__":
    main()
