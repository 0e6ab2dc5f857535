"""The knowledge store on SQLite and PostgreSQL: loads, modes, transactions, the graph view."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import kqa
import kqa.graph
from kqa.errors import KqaError, LoadError, NotFoundError
from kqa.store import Store

TSV = "Blade Runner\tdirected_by\tRidley Scott\nBlade Runner\trelease_year\t1982\n" \
      "Alien\tdirected_by\tRidley Scott\nAlien\tstarred_actors\tSigourney Weaver\n" \
      "Alien\tdirected_by\tRidley Scott\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_load_counts_and_show(db_url: str, tmp_path: Path) -> None:
    summary = kqa.load_kg(write(tmp_path, "films.tsv", TSV), "films")
    assert (summary.triples_added, summary.entities_added, summary.relations_added) == (4, 5, 3)
    assert summary.duplicates_skipped == 1
    info = kqa.open_kg("films").info()
    assert (info.triples, info.entities, info.relations, info.version) == (4, 5, 3, 1)
    shown = kqa.open_kg("films").show("ridley scott")  # case-insensitive
    assert shown["name"] == "Ridley Scott"
    assert {f["subject"] for f in shown["facts"]} == {"Blade Runner", "Alien"}
    assert {p["line"] for p in shown["provenance"]} == {1, 3}
    assert all(p["source"].endswith("films.tsv") for p in shown["provenance"])
    with pytest.raises(NotFoundError, match="closest"):
        kqa.open_kg("films").show("Ridley Scot")


def test_literals_keep_their_type(db_url: str, tmp_path: Path) -> None:
    csv = "subject,relation,object,datatype\nAlien,release_year,1979,xsd:gYear\nAlien,rating,8.5,xsd:double\n" \
          "Alien,directed_by,Ridley Scott,\n"
    kqa.load_kg(write(tmp_path, "f.csv", csv), "films")
    info = kqa.open_kg("films").info()
    assert (info.entities, info.literals, info.triples) == (2, 2, 3)
    graph = kqa.open_kg("films").graph
    year = graph.node_names.index("1979")
    assert graph.node_kind[year] == kqa.graph.LITERAL
    assert graph.node_types[year] == "literal:gYear"


def test_modes_create_append_replace(db_url: str, tmp_path: Path) -> None:
    path = write(tmp_path, "films.tsv", TSV)
    kqa.load_kg(path, "films")
    with pytest.raises(KqaError, match="--append"):
        kqa.load_kg(path, "films")
    more = write(tmp_path, "more.tsv", "Prometheus\tdirected_by\tRidley Scott\nAlien\tdirected_by\tRidley Scott\n")
    summary = kqa.load_kg(more, "films", mode="append")
    assert summary.triples_added == 1 and summary.duplicates_skipped == 1 and summary.entities_added == 1
    assert kqa.open_kg("films").info().triples == 5
    kqa.load_kg(more, "films", mode="replace")
    info = kqa.open_kg("films").info()
    assert (info.triples, info.entities, info.version) == (2, 3, 3)


def test_several_kgs_side_by_side(db_url: str, tmp_path: Path) -> None:
    kqa.load_kg(write(tmp_path, "a.tsv", TSV), "a")
    kqa.load_kg(write(tmp_path, "b.tsv", "x\tr\ty\n"), "b")
    assert [i.name for i in kqa.list_kgs()] == ["a", "b"]
    assert kqa.open_kg("b").info().triples == 1
    kqa.drop_kg("a")
    assert [i.name for i in kqa.list_kgs()] == ["b"]
    with pytest.raises(NotFoundError, match="known KGs: b"):
        kqa.open_kg("a")


def test_failed_load_leaves_store_unchanged(db_url: str, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    kqa.load_kg(write(tmp_path, "films.tsv", TSV), "films")
    before = kqa.open_kg("films").info()
    bad = write(tmp_path, "bad.tsv", "a\tb\tc\nd\te\n")
    with pytest.raises(LoadError) as caught:
        kqa.load_kg(bad, "films", mode="replace")
    assert (caught.value.line, caught.value.field) == (2, "object")
    assert kqa.open_kg("films").info() == before

    # A failure in the middle of the write (after entities, during triples) rolls back too.
    def explode(stage: str, done: int, total: int) -> None:
        if stage == "triples":
            raise RuntimeError("disk on fire")

    more = write(tmp_path, "more.tsv", "Prometheus\tdirected_by\tRidley Scott\n")
    with pytest.raises(RuntimeError):
        kqa.load_kg(more, "films", mode="append", progress=explode)
    assert kqa.open_kg("films").info() == before
    with pytest.raises(RuntimeError):
        kqa.load_kg(more, "fresh", progress=explode)
    assert "fresh" not in [i.name for i in kqa.list_kgs()]


def test_hostile_names_round_trip(db_url: str, tmp_path: Path) -> None:
    names = ["Robert'); DROP TABLE kqa_entities;--", 'The "Quoted" Film', "Ünïcödé — 東京", "100%_like\\"]
    text = "".join(f"{n}\trelated_to\t{names[(i + 1) % len(names)]}\n" for i, n in enumerate(names))
    kqa.load_kg(write(tmp_path, "hostile.tsv", text), "hostile")
    kg = kqa.open_kg("hostile")
    assert sorted(kg.graph.node_names) == sorted(names)
    for name in names:
        assert kg.show(name)["name"] == name


def test_entity_images_are_copied_with_hash(db_url: str, tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (8, 8), "red").save(tmp_path / "red.png")
    (tmp_path / "pack").mkdir()
    (tmp_path / "g.json").write_text(
        '{"nodes": [{"id": "a", "name": "A", "image": "red.png"}, {"id": "b"}],'
        ' "edges": [{"source": "a", "relation": "r", "target": "b"}]}', encoding="utf-8")
    if "jsongraph" not in kqa.plugins.get_plugins().loaders():
        pytest.skip("jsongraph loader not available")
    summary = kqa.load_kg(tmp_path / "g.json", "img")
    assert summary.images_added == 1
    images = Store().images("img")
    assert len(images) == 1 and len(images[0]["sha256"]) == 64
    assert Path(images[0]["path"]).is_file()
    assert kqa.open_kg("img").show("A")["images"] == [images[0]["path"]]


def test_graph_view_cached_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kqa.load_kg(write(tmp_path, "films.tsv", TSV), "films")
    graph = kqa.open_kg("films").graph
    kqa.graph.clear_memory()

    def no_sql(*_a: object, **_k: object) -> None:
        raise AssertionError("graph rebuilt from SQL although cached on disk")

    with monkeypatch.context() as patch:
        patch.setattr(Store, "triple_ids", no_sql)
        again = kqa.open_kg("films").graph
    assert again.node_names == graph.node_names
    assert np.array_equal(again.src, graph.src) and np.array_equal(again.dst, graph.dst)
    kqa.load_kg(write(tmp_path, "more.tsv", "Alien\thas_genre\tHorror\n"), "films", mode="append")
    assert kqa.open_kg("films").graph.num_edges == graph.num_edges + 1  # new version, rebuilt


def test_graph_helpers(tmp_path: Path) -> None:
    kqa.load_kg(write(tmp_path, "films.tsv", TSV), "films")
    graph = kqa.open_kg("films").graph
    blade, weaver = graph.find("Blade Runner"), graph.find("Sigourney Weaver")
    near = {graph.label(n) for n in graph.neighbourhood([blade], 2)}
    assert near == {"Blade Runner", "Ridley Scott", "1982", "Alien"}
    paths = graph.paths(blade, weaver, max_hops=3)
    assert len(paths) == 1
    steps = [(graph.label(e.subject), graph.relation_keys[e.relation], graph.label(e.object), inv)
             for e, inv in paths[0]]
    assert steps == [("Blade Runner", "directed_by", "Ridley Scott", False),
                     ("Alien", "directed_by", "Ridley Scott", True),
                     ("Alien", "starred_actors", "Sigourney Weaver", False)]
    nx_graph = graph.nx
    assert nx_graph.number_of_edges() == 4 and nx_graph.nodes[blade]["name"] == "Blade Runner"


def test_metaqa_kb_loads(metaqa: Path) -> None:
    summary = kqa.load_kg(metaqa / "kb.txt", "movies")
    info = kqa.open_kg("movies").info()
    assert (info.triples, info.entities, info.relations) == (133_582, 43_234, 9)
    assert summary.duplicates_skipped == 0
