"""FAISS indexes (persistence, staleness, incremental updates) and entity linking."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kqa
import kqa.index
from kqa.cli import main
from kqa.errors import ImageError
from kqa.graph import load_graph
from kqa.images import open_image
from kqa.index import build_index, open_index, read_index

import films_kg
from tiny_models import tiny_clip, tiny_text_model


@pytest.fixture(scope="module")
def tiny_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    return "hf:" + str(tiny_text_model(tmp_path_factory.mktemp("tiny-bert")))


@pytest.fixture
def films(tmp_path: Path) -> dict[str, Path]:
    paths = films_kg.build(tmp_path / "films")
    kqa.load_kg(paths["kb"], "films")
    return paths


def test_index_round_trip(films: dict[str, Path], tiny_text: str) -> None:
    reports = kqa.build_index("films", text_encoder=tiny_text)
    by_kind = {r.kind: r for r in reports}
    assert by_kind["entities"].action == "built" and by_kind["images"].action == "skipped"
    graph = kqa.open_kg("films").graph
    stored, why = read_index("films", "entities")
    assert stored is not None and why == ""
    assert stored.manifest.rows == graph.num_nodes  # every node is an entity with one name
    assert stored.manifest.encoder["name"] == tiny_text and stored.manifest.index_type == "flat"
    kqa.index._forget("films", "entities")
    index = open_index("films", "entities", tiny_text)
    from kqa.encode import get_encoder

    name = graph.node_names[7]
    _scores, rows = index.search(get_encoder(tiny_text, "text").encode([name]), 1)
    assert graph.node_names[index.targets[rows[0][0]]] == name
    assert kqa.build_index("films", text_encoder=tiny_text)[0].action == "up to date"


def test_stale_index_updates_incrementally(films: dict[str, Path], tiny_text: str, tmp_path: Path) -> None:
    build_index("films", "entities", tiny_text)
    more = tmp_path / "more.tsv"
    more.write_text("Brand New Film\tdirected_by\tNew Person\nBrand New Film\thas_genre\tDrama\n", encoding="utf-8")
    kqa.load_kg(more, "films", mode="append")
    stale, _ = read_index("films", "entities")
    assert stale is not None and stale.manifest.kg_version == 1
    assert "stale" in next(r["state"] for r in kqa.index.index_status("films") if r["kind"] == "entities")
    report = build_index("films", "entities", tiny_text)
    assert (report.action, report.encoded) == ("updated", 2)  # only the two new entities
    fresh, _ = read_index("films", "entities")
    assert fresh.manifest.kg_version == 2 and fresh.manifest.rows == stale.manifest.rows + 2
    index = open_index("films", "entities", tiny_text)
    assert kqa.open_kg("films").graph.node_names[index.targets[-1]] in {"Brand New Film", "New Person"}


def test_replaced_kg_rebuilds_from_scratch(films: dict[str, Path], tiny_text: str, tmp_path: Path) -> None:
    build_index("films", "entities", tiny_text)
    other = tmp_path / "other.tsv"
    other.write_text("x\tr\ty\n", encoding="utf-8")
    kqa.load_kg(other, "films", mode="replace")
    report = build_index("films", "entities", tiny_text)
    assert (report.action, report.rows) == ("built", 2)


def test_damaged_or_mismatched_index_is_rebuilt(films: dict[str, Path], tiny_text: str,
                                                tmp_path: Path) -> None:
    build_index("films", "entities", tiny_text)
    path = kqa.index.index_dir("films", "entities") / "index.faiss"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    index, why = read_index("films", "entities")
    assert index is None and "checksum" in why
    assert open_index("films", "entities", tiny_text) is not None  # rebuilt, not used damaged
    assert read_index("films", "entities")[0] is not None
    other = "hf:" + str(tiny_text_model(tmp_path / "other-bert", seed=1))
    report = build_index("films", "entities", other)
    assert report.action == "built"  # another encoder: nothing reused


def test_hnsw_above_threshold(films: dict[str, Path], tiny_text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kqa.index, "APPROX_THRESHOLD", 10)
    report = build_index("films", "entities", tiny_text)
    assert report.index_type == "hnsw"
    index = open_index("films", "entities", tiny_text)
    graph = kqa.open_kg("films").graph
    from kqa.encode import get_encoder

    _s, rows = index.search(get_encoder(tiny_text, "text").encode([graph.node_names[3]]), 1)
    assert index.targets[rows[0][0]] == 3
    assert build_index("films", "entities", tiny_text, index_type="flat", force=True).index_type == "flat"


def test_linking_with_and_without_brackets(films: dict[str, Path]) -> None:
    graph = kqa.open_kg("films").graph
    title = next(n for n in graph.node_names if n.count(" ") == 1 and n.split()[0] in films_kg.WORDS)
    for question in (f"who directed [{title}]", f"who directed {title}", f"who directed {title.lower()}?"):
        result = kqa.link_entities("films", question)
        assert result.candidates[0].name == title, question
        assert result.candidates[0].source == ("bracket" if "[" in question else "alias")
    assert "[" not in kqa.link_entities("films", f"who directed [{title}]").question


def test_a_possessive_links_the_name_it_is_attached_to(films: dict[str, Path]) -> None:
    graph = kqa.open_kg("films").graph
    title = next(n for n in graph.node_names if n.count(" ") == 1 and n.split()[0] in films_kg.WORDS)
    for question in (f"who is {title}'s director", f"who is {title}\u2019s director?"):
        best = kqa.link_entities("films", question).candidates[0]
        assert (best.name, best.source, best.mention) == (title, "alias", title), question


def test_a_name_with_an_apostrophe_s_still_links_whole() -> None:
    from types import SimpleNamespace

    from kqa.graph import ENTITY
    from kqa.link import AliasTable

    names = ["The Devil's Carnival", "The Devil", "Australia"]
    graph = SimpleNamespace(num_nodes=3, node_kind=[ENTITY] * 3, node_names=names, aliases=[[], [], []])
    spans = AliasTable(graph).spans("who made The Devil's Carnival and Australia's flag", [])
    assert {(s.text, tuple(s.nodes)) for s in spans} == {
        ("The Devil's Carnival", (0,)), ("The Devil", (1,)), ("Australia", (2,))}


def test_fuzzy_linking_of_a_typo(films: dict[str, Path]) -> None:
    person = next(n for n in kqa.open_kg("films").graph.node_names if n.split()[0] in films_kg.FIRST)
    typo = person[:-2] + person[-1] + person[-2]  # swap the last two letters
    result = kqa.link_entities("films", f"what films did [{typo}] direct")
    assert result.candidates[0].name == person and result.candidates[0].source == "fuzzy"


def _coloured(path: Path, colours: list[tuple[int, int, int]]) -> Path:
    array = np.zeros((60, 90, 3), dtype=np.uint8)
    for i, colour in enumerate(colours):
        array[:, i * 30:(i + 1) * 30] = colour
    Image.fromarray(array).save(path)
    return path


@pytest.fixture
def flags(tmp_path: Path) -> Path:
    """A KG of three 'countries' with tricolour flag images (jsongraph)."""
    palette = {"A": [(200, 0, 0), (255, 255, 255), (0, 0, 200)], "B": [(0, 150, 0), (255, 255, 0), (0, 0, 0)],
               "C": [(255, 128, 0), (128, 0, 128), (0, 200, 200)]}
    nodes = [{"id": k, "name": f"Land {k}", "type": "country",
              "image": _coloured(tmp_path / f"{k}.png", c).name} for k, c in palette.items()]
    edges = [{"source": "A", "relation": "borders", "target": "B"}]
    path = tmp_path / "flags.json"
    path.write_text(json.dumps({"nodes": nodes, "edges": edges}), encoding="utf-8")
    kqa.load_kg(path, "flags")
    return tmp_path


def test_identical_entity_images_are_ranked_by_node_whatever_order_the_search_returns() -> None:
    """Two entities showing the same picture tie exactly; the search may return either first
    (here the higher node): linking ranks the tie by node, lowest first."""
    from types import SimpleNamespace

    from kqa.link import image_candidates

    class Search:
        keys = ["img:7", "img:3", "img:5"]
        targets = np.array([7, 3, 5])

        def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
            return np.array([[0.9, 0.9, 0.4]]), np.array([[0, 1, 2]])

    graph = SimpleNamespace(node_names=[f"n{i}" for i in range(8)])
    found = image_candidates(graph, Search(), np.zeros(4), top_k=3, temperature=0.05)  # type: ignore[arg-type]
    assert [c.node for c in found] == [3, 7, 5]
    assert found[0].score == found[1].score > found[2].score


def test_tiny_local_clip_encodes_and_links_images(flags: Path, tmp_path: Path) -> None:
    clip = "hf-clip:" + str(tiny_clip(tmp_path / "clip"))
    report = build_index("flags", "images", clip, image_views=1)
    assert (report.action, report.rows) == ("built", 6)
    from kqa.encode import get_encoder

    assert get_encoder(clip, "image").dim == 8
    from kqa.link import get_linker

    found = get_linker("flags").link_image(flags / "B.png", encoder_ref=clip)
    assert found[0].name == "Land B" and found[0].source == "image"


def test_image_index_views_are_made_on_every_core_and_the_same_as_one_by_one(
        flags: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The index's augmented views are made in worker processes, a block at a time: each view
    must still be the one its image and view number seed, in the order of the rows."""
    import kqa.augment
    from kqa.index import _encode_items, _image_view, image_rows

    blocks: list[int] = []
    in_processes = kqa.augment.in_processes
    monkeypatch.setattr(kqa.augment, "in_processes",
                        lambda task, count: blocks.append(count) or in_processes(task, count))

    class Pixels:  # an "encoder" whose vector is the picture's pixels: equal vectors, equal views
        dim, batch_size = 3 * 16 * 16, 4

        def encode_batch(self, pictures):  # type: ignore[no-untyped-def]
            return np.stack([np.asarray(p.convert("RGB").resize((16, 16)), dtype=np.float32).ravel()
                             for p in pictures])

    _keys, items = image_rows(load_graph("flags"), views=23)  # 72 rows: enough to fork for
    made = _encode_items("images", Pixels(), items, None)  # type: ignore[arg-type]
    one_by_one = Pixels().encode_batch([_image_view(*item) for item in items])
    assert blocks == [64, 8] and np.array_equal(made, one_by_one)  # 16 batches of 4, then the rest
    assert not np.array_equal(made[1], made[2])  # views differ from each other


def test_efficientnet_links_a_distorted_flag(flags: Path) -> None:
    from kqa.augment import TEST_MIX, distort

    kqa.build_index("flags", image_views=2)
    rng = np.random.default_rng(5)
    query = distort(Image.open(flags / "C.png"), rng, TEST_MIX.only("rotate"))
    result = kqa.link_entities("flags", "which country is this", image=query)
    assert result.image_candidates[0].name == "Land C" and result.image_candidates[0].score > 0.5


def _png_claiming(size: int, path: Path) -> Path:
    """A valid PNG header that claims size×size pixels (the body is tiny)."""
    Image.new("RGB", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    start = data.index(b"IHDR")
    data[start + 4:start + 12] = struct.pack(">II", size, size)
    data[start + 17:start + 21] = struct.pack(">I", zlib.crc32(bytes(data[start:start + 17])) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))
    return path


def test_bad_images_are_refused_clearly(tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("this is not an image", encoding="utf-8")
    with pytest.raises(ImageError, match="not an image"):
        open_image(text)
    good = tmp_path / "good.png"
    Image.new("RGB", (64, 64), "red").save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:60])
    with pytest.raises(ImageError, match="corrupt|truncated|not an image"):
        open_image(truncated)
    with pytest.raises(ImageError, match="too large"):
        open_image(_png_claiming(20000, tmp_path / "huge.png"))
    with pytest.raises(ImageError, match="no such"):
        open_image(tmp_path / "missing.png")
    assert open_image(good).size == (64, 64)


def test_cli_link_question_file_json(films: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    lines = films["test"].read_text(encoding="utf-8").splitlines()[:5]
    qfile = films["test"].parent / "five.txt"
    qfile.write_text("\n".join(l.replace("[", "").replace("]", "") for l in lines) + "\n", encoding="utf-8")
    assert main(["link", "--kg", "films", "--questions", str(qfile), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 5
    for line, row in zip(lines, rows):
        gold = line[line.index("[") + 1:line.index("]")]
        assert row["entities"][0]["name"] == gold
        assert {"name", "score", "source"} <= set(row["entities"][0])


def test_cli_link_rejects_a_non_image(flags: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bogus = flags / "bogus.jpg"
    bogus.write_bytes(b"\x00\x01 definitely not a jpeg")
    assert main(["link", "--kg", "flags", "which country is this", "--image", str(bogus)]) == 1
    assert "not an image" in capsys.readouterr().err


def test_learned_span_scores_keep_a_title_whole() -> None:
    """A tagger unsure of the function words inside a title ("in", "the") must not make the
    title's first word alone the better-scored mention."""
    from kqa.answer import TokenMentionScorer
    from kqa.link import Span, resolve_overlaps

    question = "who directed Splendor in the Grass actors"
    words = [(m.start(), m.end()) for m in __import__("re").finditer(r"\w+", question)]
    probs = [0.0, 0.0, 1.0, 0.0, 0.7, 1.0, 0.0]  # what a tagger said for one MetaQA question

    def span(text: str) -> Span:
        start = question.index(text)
        return Span(start, start + len(text), text, text.lower(), [0], False)

    spans = [span("Splendor"), span("Splendor in the Grass"), span("Grass")]
    scores = TokenMentionScorer(words, probs).score(question, spans, None)  # type: ignore[arg-type]
    assert scores[1] > 0.9 and scores[1] >= scores[0]
    assert [s.text for s, _score in resolve_overlaps(spans, scores)] == ["Splendor in the Grass"]


def _name_linker(names: list[str], aliases: list[list[str]] | None = None):  # type: ignore[no-untyped-def]
    """A linker over a KG of bare names (and aliases), no store: linking rules in isolation."""
    from types import SimpleNamespace

    from kqa.graph import ENTITY
    from kqa.link import Linker

    graph = SimpleNamespace(num_nodes=len(names), node_kind=[ENTITY] * len(names), node_names=names,
                            aliases=aliases or [[] for _ in names], degree=lambda: np.ones(len(names)),
                            name="no-such-kg")
    return Linker(graph)  # type: ignore[arg-type]


def test_fuzzy_matching_counts_a_swap_as_one_slip_and_looks_inside_runs_of_rare_words() -> None:
    """"Blearus" is one slip from "Belarus" (the edit ratio alone scores it below the line),
    and "bordering Brazl" (a rare word next to the misspelt name) still finds Brazil."""
    from kqa.link import _sub_phrases

    linker = _name_linker(["Belarus", "Brazil", "Chad"])
    assert linker._fuzzy("blearus")[0][0] == "belarus"
    assert _sub_phrases("bordering Brazl") == ["bordering Brazl", "bordering", "Brazl"]
    for question, name in (("list the countries bordering Brazl", "Brazil"),
                           ("which countries border Blearus", "Belarus")):
        best = linker.link(question).candidates[0]
        assert (best.name, best.source) == (name, "fuzzy"), question
    assert linker.link("which countries border Chda").candidates == []  # too short to guess


def test_a_tie_between_look_alike_names_goes_to_the_one_a_swap_explains() -> None:
    """"Beliez" is as near Belize as Belgium's alias "Belgie" by the edit ratio (0.83 each),
    but one swap from Belize and two edits from "Belgie": Belize first."""
    linker = _name_linker(["Belgium", "Belize"], [["Belgie"], []])
    assert [c.name for c in linker.link("which currency is used in Beliez").candidates][:2] == ["Belize", "Belgium"]


def test_a_misspelt_long_name_wins_over_the_short_name_it_holds() -> None:
    """"Amerrican Samoa" holds the exact name "Samoa", "Chrismtas Island" Iceland's alias
    "Island", and "Bosnia and Hekzegovina" is split by "and" into two runs of words: each is
    the longer name, misspelt. A correctly spelt short name next to ordinary words stays."""
    names = ["Samoa", "American Samoa", "Iceland", "Christmas Island", "Bosnia and Herzegovina",
             "Bosnian", "Guinea", "Guinea-Bissau", "Equatorial Guinea"]
    linker = _name_linker(names, [[], [], ["Island"], [], [], [], [], [], []])
    for question, name in (("which countries border Amerrican Samoa", "American Samoa"),
                           ("what is the capital of Chrismtas Island", "Christmas Island"),
                           ("what is the capital of Bosnia and Hekzegovina", "Bosnia and Herzegovina"),
                           ("what languages are spoken in Guinea-Bisau", "Guinea-Bissau"),
                           ("what is the capital of Samoa", "Samoa"),
                           ("Samoa's capital", "Samoa"),
                           ("what is Amerrican Samoa's capital", "American Samoa"),
                           ("which countries border Guinea", "Guinea"),
                           ("what is the capital city of Guinea", "Guinea")):
        assert linker.link(question).candidates[0].name == name, question
    short = [c for c in linker.link("which countries border Amerrican Samoa").candidates if c.name == "Samoa"]
    assert short, "the short name stays an alternative"


def test_a_name_ending_in_a_bracket_links_whole() -> None:
    """"Holy See (Vatican City State)": the words end before ")", so the span did not equal the
    name and lost to its alias "Vatican City State", which a city is named exactly."""
    names = ["Holy See (Vatican City State)", "Vatican City State"]
    best = _name_linker(names, [["Vatican City State"], []]).link(
        "what is the capital of Holy See (Vatican City State)").candidates[0]
    assert (best.name, best.mention) == (names[0], names[0])


def test_hyphenated_schema_words_are_joined_and_names_are_not() -> None:
    from kqa.link import join_compounds

    words = frozenset({"subregion", "capital"})
    assert join_compounds("what sub-region is Guinea-Bissau in", words) == "what subregion is Guinea-Bissau in"
    assert join_compounds("the Sub-Region of X", words) == "the SubRegion of X"
    assert join_compounds("a well-known sub-regional capital", words) == "a well-known sub-regional capital"


def test_a_qualified_name_is_also_known_without_its_qualifier() -> None:
    """"Sint Maarten (Dutch part)" is "Sint Maarten" to people (and to a trained tagger, which
    reads "(Dutch part)" as no part of the name); a dated qualifier names a former thing, whose
    bare name belongs to the current one, and a bare name someone has is not taken."""
    linker = _name_linker(["Sint Maarten (Dutch part)", "Dutch", "Leone (1964–2022)", "US Dollar (Next day)",
                           "US Dollar"])
    assert linker.link("what is the capital of Sint Maarten").candidates[0].name == "Sint Maarten (Dutch part)"
    assert "leone" not in linker.aliases.table
    assert linker.aliases.table["us dollar"] == [4]


def test_an_identifier_used_as_a_name_links_as_people_write_it() -> None:
    """KGs built from identifiers (UMLS's "disease_or_syndrome", DBpedia's "Barack_Obama") name
    entities with underscores; people type spaces. Both spellings link."""
    from kqa.link import spoken

    linker = _name_linker(["disease_or_syndrome", "virus", "Barack_Obama", "snake_case_thing_"])
    for question, name in (("what causes disease or syndrome", "disease_or_syndrome"),
                           ("what causes disease_or_syndrome", "disease_or_syndrome"),
                           ("where was Barack Obama born", "Barack_Obama")):
        assert linker.link(question).candidates[0].name == name, question
    assert spoken("Barack_Obama") == "Barack Obama" and spoken("snake_case_thing_") == "snake case thing"
    assert spoken("New_York City") == "New_York City"  # a name with spaces is written as given


def test_a_name_holding_a_shorter_matched_name_wins_over_it() -> None:
    """Longest match: a tagger unsure of the first word of a name that opens the question
    ("Christmas" at 0.39) must not make a shorter alias inside it (Iceland's "Island") the
    mention; a name the user bracketed is not outbid by a longer one around it."""
    from kqa.answer import TokenMentionScorer
    from kqa.link import Span, resolve_overlaps

    question = "Christmas Island's capital city is?"
    words = [(0, 9), (10, 16), (16, 17), (17, 18), (19, 26), (27, 31), (32, 34), (34, 35)]
    probs = [0.39, 1.0, 0.21, 0.0, 0.0, 0.88, 0.0, 0.0]  # what a trained tagger said

    def span(text: str, bracketed: bool = False) -> Span:
        start = question.index(text)
        return Span(start, start + len(text), text, text.lower(), [0], bracketed)

    spans = [span("Christmas Island"), span("Island")]
    scores = TokenMentionScorer(words, probs).score(question, spans, None)  # type: ignore[arg-type]
    assert scores[1] > scores[0]  # the tagger alone prefers the shorter name
    assert [s.text for s, _score in resolve_overlaps(spans, scores)] == ["Christmas Island"]
    hinted = [span("Christmas Island"), span("Island", bracketed=True)]
    assert [s.text for s, _score in resolve_overlaps(hinted, [0.5, 1.0])] == ["Island"]


def _tagger(question: str, said: dict[str, float]):  # type: ignore[no-untyped-def]
    """A trained tagger's per-token mention probabilities, given per word (0 elsewhere)."""
    import re

    from kqa.answer import TokenMentionScorer

    words = [(m.start(), m.end()) for m in re.finditer(r"\w+|[^\w\s]", question)]
    return TokenMentionScorer(words, [said.get(question[a:b], 0.0) for a, b in words])


def test_a_near_miss_counts_only_as_much_as_its_words_read_as_a_name() -> None:
    """Where the tagger is unsure of the exact name ("The Card Player" at 0.23), a question word
    that merely resembles another name ("screenwriters") must not outrank it."""
    linker = _name_linker(["The Card Player", "Screenwritters"])
    question = "what did the screenwriters of The Card Player write"
    tagger = _tagger(question, {"The": 0.13, "Card": 0.43, "Player": 0.04})
    linked = linker.link(question, scorer=tagger)
    assert [c.name for c in linked.candidates][:1] == ["The Card Player"]
    misspelt = "what did the screenwriters of The Crad Player write"  # a slip where a name belongs
    tagged = _tagger(misspelt, {"The": 0.9, "Crad": 0.9, "Player": 0.9})
    assert linker.link(misspelt, scorer=tagged).candidates[0].name == "The Card Player"


def test_a_surname_links_the_person_whose_name_it_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    """People name a person by the surname ("where did Einstein die"); that was linked only by
    sentence vectors, to Albert Einstein and to another physicist (Isaac Newton, 0.48), and the
    answer was split between where each died. A name's first or last words now link it, and
    sentence-vector neighbours are not searched for the words a name part explains."""
    from kqa.link import Candidate, Linker

    linker = _name_linker(["Albert Einstein", "Isaac Newton", "Napoleon Bonaparte", "Vincent van Gogh",
                           "Alan Turing", "Turing Award", "Mexico City"])
    searched: list[str] = []

    def neighbours(self: Linker, clean: str, regions: list[tuple[int, int]]) -> list[Candidate]:
        searched.extend(clean[s:e] for s, e in regions)
        return [Candidate(1, "Isaac Newton", 0.48, "embedding", clean[s:e], (s, e)) for s, e in regions]

    monkeypatch.setattr(Linker, "_embedding_matches", neighbours)
    linked = linker.link("where did Einstein die")
    assert [(c.name, c.source) for c in linked.candidates] == [("Albert Einstein", "name part")]
    assert searched == []
    assert linker.link("who was Napoleon married to").candidates[0].name == "Napoleon Bonaparte"  # first word
    assert linker.link("where did Van Gogh die").candidates[0].name == "Vincent van Gogh"  # last words
    assert {c.name for c in linker.link("who did Turing work for").candidates} == {"Alan Turing", "Turing Award"}
    assert linker.link("what is [City]").candidates[0].name == "Mexico City"  # written as a name
    assert not any(c.source == "name part" for c in linker.link("what is [city]").candidates)  # a common word
    assert "Newton" in linker.link("where did Newtonn die").candidates[0].name  # no name part: as before
    # typed in lower case, a surname English also uses as a word (Zipf 3.7) is still one
    assert linker.link("where did einstein die").candidates[0].name == "Albert Einstein"
    assert not any(c.source == "name part" for c in linker.link("which city is it").candidates)
    short = _name_linker(["World War I"]).link("where was I born").candidates
    assert not any(c.source == "name part" for c in short)  # "I" is too short to be a name part


def test_a_name_keeps_its_own_trailing_punctuation() -> None:
    """"Dig!": the "!" is part of the name, and a tagger that reads it so must not see the bare
    "Dig" as a name cut short."""
    linker = _name_linker(["Dig!", "Alien"])
    question = "who starred in the films whose screenwriters also wrote Dig!"
    spans = linker.aliases.spans(question, [])
    assert [s.text for s in spans] == ["Dig!"]
    linked = linker.link(question, scorer=_tagger(question, {"Dig": 1.0, "!": 1.0}))
    assert linked.candidates[0].name == "Dig!" and linked.candidates[0].score > 0.9
    assert [s.text for s in linker.aliases.spans("who directed Alien?", [])] == ["Alien"]


def test_brackets_around_nothing_name_nothing(films: dict[str, Path]) -> None:
    """"who directed [ ]" marks no name: it links as "who directed" does (nothing), instead of
    a blank mention that fuzzy and embedding matching found some entity for."""
    from kqa.link import strip_brackets

    assert strip_brackets("who directed [ ] in 1999") == ("who directed   in 1999", [])
    assert strip_brackets("[Jaws] and [ ]") == ("Jaws and  ", [(0, 4)])
    assert kqa.link_entities("films", "who directed [ ]").candidates == \
        kqa.link_entities("films", "who directed").candidates == []
