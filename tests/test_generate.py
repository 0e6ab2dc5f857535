"""Questions generated from a KG: right answers, held-out phrasings, pictures, negatives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kqa
from kqa.generate import (GenerateConfig, Generator, generated_examples, generic_phrasing, pick,
                          Templates, plural_noun, read_templates)


def _flag(path: Path, colours: list[tuple[int, int, int]]) -> str:
    array = np.zeros((60, 90, 3), dtype=np.uint8)
    for i, colour in enumerate(colours):
        array[:, i * 30:(i + 1) * 30] = colour
    Image.fromarray(array).save(path)
    return path.name


@pytest.fixture
def lands(tmp_path: Path) -> Path:
    palette = {"A": [(200, 0, 0), (255, 255, 255), (0, 0, 200)], "B": [(0, 150, 0), (255, 255, 0), (0, 0, 0)],
               "C": [(255, 128, 0), (128, 0, 128), (0, 200, 200)]}
    nodes = [{"id": k, "name": f"Land {k}", "type": "country", "image": _flag(tmp_path / f"{k}.png", c),
              "attributes": {"population": 1000 * (i + 1)}} for i, (k, c) in enumerate(palette.items())]
    nodes += [{"id": f"cap{k}", "name": f"City {k}", "type": "city"} for k in palette]
    edges = [{"source": k, "relation": "capital", "target": f"cap{k}"} for k in palette]
    edges += [{"source": "A", "relation": "borders", "target": "B"}, {"source": "B", "relation": "borders", "target": "A"},
              {"source": "B", "relation": "borders", "target": "C"}, {"source": "C", "relation": "borders", "target": "B"}]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "lands.json").write_text(json.dumps({"nodes": nodes, "edges": edges}), encoding="utf-8")
    for k in palette:
        (tmp_path / f"{k}.png").rename(tmp_path / "data" / f"{k}.png")
    manifest = {"name": "lands", "files": [{"path": "data/lands.json", "format": "jsongraph"}],
                "questions": {"relations": {"capital": {"ask": ["what is the capital of {x}", "!name the capital of {x}"],
                                                        "noun": ["the capital of {x}"]},
                                            "borders": {"ask": ["which countries border {x}"],
                                                        "noun": ["the neighbours of {x}"]}},
                              "shown": {"country": ["this country", "!the country in the photo"]},
                              "identity": {"country": ["which country is this", "!identify this country"]},
                              "two_hop": [["borders", "capital"]]}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    kqa.load_kg(tmp_path, "lands")
    return tmp_path


def by_text(examples: list) -> dict[str, list]:
    out: dict[str, list] = {}
    for e in examples:
        out.setdefault(e.text, []).append(e)
    return out


def test_answers_follow_the_kg(lands: Path) -> None:
    graph = kqa.open_kg("lands").graph
    examples = generated_examples("lands", GenerateConfig(seed=0, image_share=0.0, negatives=0.0))
    named = by_text(examples)
    assert [graph.label(a) for a in named["what is the capital of Land A"][0].answers] == ["City A"]
    two = named["what is the capital of the neighbours of Land B"][0]
    assert sorted(graph.label(a) for a in two.answers) == ["City A", "City C"]
    assert sorted(graph.label(a) for a in named["which countries border Land B"][0].answers) == ["Land A", "Land C"]
    e = named["what is the capital of Land A"][0]
    start, end = e.mention_spans[0]
    assert e.text[start:end] == "Land A" and e.topic == [(graph.find("Land A"), 1.0)]
    population = [x for x in examples if x.group == "text:population" and "Land C" in x.text][0]
    assert [graph.label(a) for a in population.answers] == ["3000"]


def test_pictures_identity_and_negatives(lands: Path) -> None:
    graph = kqa.open_kg("lands").graph
    examples = generated_examples("lands", GenerateConfig(seed=1, image_share=1.0, negatives=0.5, views=2))
    identity = [e for e in examples if e.group == "identity"]
    assert identity and all(e.answers == [e.image_entity] for e in identity)
    shown = [e for e in examples if e.group == "image:capital"]
    assert shown and all(e.topic == [] and e.image is not None and "this country" in e.text for e in shown)
    assert all(graph.label(e.answers[0]) == graph.label(e.image_entity).replace("Land", "City") for e in shown)
    negatives = [e for e in examples if e.group == "no entity"]
    assert negatives and all(e.answers == [] and e.image_entity is None for e in negatives)
    assert len({id(e.image) for e in shown}) <= 2 * 3  # a fixed pool of pictures per entity


def test_held_out_phrasings(lands: Path) -> None:
    train = generated_examples("lands", GenerateConfig(seed=0, image_share=0.5))
    test = generated_examples("lands", GenerateConfig(seed=0, split="test", image_share=0.5))
    train_texts = {e.text for e in train}
    assert not any("name the capital of" in t or "identify this" in t or "in the photo" in t for t in train_texts)
    assert any(e.text.startswith("name the capital of") for e in test)
    assert pick(["a", "!b"], "train") == ["a"] and pick(["a", "!b"], "test") == ["b"]
    assert pick(["a"], "test") == ["a"]  # nothing held out: the test split reuses them


def test_generic_templates_without_a_manifest(tmp_path: Path) -> None:
    path = tmp_path / "kb.tsv"
    path.write_text("Alpha\tmanager\tBeta\nGamma\tmanager\tBeta\n", encoding="utf-8")
    kqa.load_kg(path, "plain")
    examples = generated_examples("plain", GenerateConfig(seed=0))
    graph = kqa.open_kg("plain").graph
    forward = [e for e in examples if e.group == "text:manager" and "Alpha" in e.text]
    assert forward and all([graph.label(a) for a in e.answers] == ["Beta"] for e in forward)
    inverse = [e for e in examples if e.group == "text:~manager" and "Beta" in e.text]
    assert inverse and sorted(graph.label(a) for a in inverse[0].answers) == ["Alpha", "Gamma"]
    assert not any(e.image is not None for e in examples)


def test_deterministic(lands: Path) -> None:
    one = generated_examples("lands", GenerateConfig(seed=4))
    two = generated_examples("lands", GenerateConfig(seed=4))
    assert [(e.text, e.answers) for e in one] == [(e.text, e.answers) for e in two]
    assert read_templates({}).two_hop == []
    assert isinstance(Generator, type)


def test_a_name_shared_by_two_entities_names_both(tmp_path: Path) -> None:
    """Two cities called Kingston: "which country has Kingston as capital" is about both, so
    the generated answers are the union; a country and its capital both called Singapore:
    propagation keeps a topic (the city) reached from another topic in one hop."""
    import torch

    from kqa.retrieve import Propagator, Sparse

    nodes = [{"id": "jm", "name": "Jamaica", "type": "country"}, {"id": "nf", "name": "Norfolk", "type": "country"},
             {"id": "k1", "name": "Kingston", "type": "city"}, {"id": "k2", "name": "Kingston", "type": "city"},
             {"id": "sg", "name": "Singapore", "type": "country"}, {"id": "sgc", "name": "Singapore", "type": "city"}]
    edges = [{"source": "jm", "relation": "capital", "target": "k1"},
             {"source": "nf", "relation": "capital", "target": "k2"},
             {"source": "sg", "relation": "capital", "target": "sgc"}]
    path = tmp_path / "capitals.json"
    path.write_text(json.dumps({"nodes": nodes, "edges": edges}), encoding="utf-8")
    kqa.load_kg(path, "capitals")
    graph = kqa.open_kg("capitals").graph
    examples = generated_examples("capitals", GenerateConfig(seed=0, negatives=0.0))
    asked = [e for e in examples if e.group == "text:~capital" and "Kingston" in e.text]
    assert asked and all(sorted(graph.label(a) for a in e.answers) == ["Jamaica", "Norfolk"] for e in asked)
    assert all(sorted(graph.label(n) for n, _w in e.topic) == ["Kingston", "Kingston"] for e in asked)
    singapore = [n for n in range(graph.num_nodes) if graph.node_names[n] == "Singapore"]
    propagator = Propagator(graph)
    probs = torch.zeros(1, propagator.num_slots)
    probs[0, graph.relation_keys.index("capital")] = 1.0
    start = Sparse(torch.zeros(2, dtype=torch.long), torch.tensor(singapore), torch.full((2,), 0.5))
    first, second = propagator.run(start, [probs, probs])[0][1:]
    reached = first.node[first.value > 0].tolist()
    assert [graph.node_types[n] for n in reached] == ["city"]  # the capital of Singapore
    assert not set(second.node[second.value > 0].tolist()) & set(singapore)  # later hops never come back to a topic


def test_two_hop_questions_also_use_noun_forms_of_one_hop_questions() -> None:
    """Every phrasing a pack gives for a relation should also appear inside compositions: the
    one-hop questions are turned into noun phrases by plain grammar; inverted questions
    ("what currency does {x} use") have no such form and are left out."""
    from kqa.generate import noun_phrases

    assert noun_phrases(["which countries border {x}", "what are the neighbours of {x}",
                         "name the neighbouring countries of {x}", "what currency does {x} use",
                         "which region is {x} in", "how big is {x}", "which movies star {x}"]) == [
        "the countries that border {x}", "the neighbours of {x}", "the neighbouring countries of {x}",
        "the movies that star {x}"]


def test_slot_types_say_which_type_of_node_each_relation_leads_to(lands: Path) -> None:
    """capital leads to cities, its inverse to countries; population to integers."""
    import torch

    from kqa.answer import _node_types, _slot_types, answer_type_names
    from kqa.encode import get_encoder
    from kqa.graph import load_graph

    graph = load_graph("lands")
    node_type, _ = _node_types(graph, get_encoder("minilm", "text"))  # type: ignore[arg-type]
    table = _slot_types(graph, node_type)
    names = answer_type_names(graph)
    capital = graph.relation_keys.index("capital")
    assert table[capital, names.index("city")] == 1.0
    assert table[capital + graph.num_relations, names.index("country")] == 1.0
    assert table[graph.relation_keys.index("population"), names.index("integer number")] == 1.0
    assert torch.allclose(table.sum(-1), torch.ones(2 * graph.num_relations))


def test_a_typo_changes_one_word_and_never_a_placeholder() -> None:
    from kqa.generate import add_typo

    rng = np.random.default_rng(0)
    template = "which {type} is {x} part of, and what is its capital"
    for _ in range(200):
        slipped = add_typo(template, rng)
        assert slipped != template and "{type}" in slipped and "{x}" in slipped
        changed = [(a, b) for a, b in zip(template.split(" "), slipped.split(" ")) if a != b]
        assert len(changed) == 1 and len(changed[0][0]) >= 4
        assert abs(len(changed[0][0]) - len(changed[0][1])) <= 1
    assert add_typo("is {x} big", rng) == "is {x} big"  # no word long enough


def test_typos_go_to_a_share_of_training_questions_only(lands: Path) -> None:
    """The same questions with and without typos (their own random stream), the same answers;
    held-out test questions never get them."""
    options = {"seed": 0, "image_share": 0.0, "negatives": 0.0}
    clean = generated_examples("lands", GenerateConfig(typos=0.0, **options))
    slipped = generated_examples("lands", GenerateConfig(typos=0.5, **options))
    assert [e.answers for e in clean] == [e.answers for e in slipped]
    differ = [(a.text, b.text) for a, b in zip(clean, slipped) if a.text != b.text]
    assert 0.2 * len(clean) < len(differ) < 0.8 * len(clean)
    for a, b in differ:
        assert len(a.split()) == len(b.split()) and sum(x != y for x, y in zip(a.split(), b.split())) == 1
    for a, b in zip(clean, slipped):  # the mention still marks the entity's name
        for start, end in b.mention_spans:
            assert b.text[start:end] in {a.text[s:e] for s, e in a.mention_spans}
    test = {"seed": 0, "split": "test", "image_share": 0.0, "negatives": 0.0}
    assert [e.text for e in generated_examples("lands", GenerateConfig(typos=0.0, **test))] == \
        [e.text for e in generated_examples("lands", GenerateConfig(typos=0.5, **test))]


def test_a_plural_noun_phrase_makes_the_composed_question_agree() -> None:
    """"in what part of the world is the countries next to X" is no question anybody types:
    the verb whose subject is the composed noun phrase agrees with it, "its" becomes "their",
    and a phrase whose head is singular, or {x} as an object, leaves the template alone."""
    from kqa.generate import agree, plural_phrase

    assert [plural_phrase(p) for p in ["the countries next to {x}", "the neighbours of {x}",
                                       "the neighbouring countries of {x}", "the countries bordering {x}",
                                       "the languages spoken in {x}", "the capital cities of {x}",
                                       "the capital of {x}", "the part of its continent where {x} lies",
                                       "the money used in {x}", "the status of {x}", "the people of {x}"]] == [
        True, True, True, True, True, True, False, False, False, False, True]
    assert agree("in what part of the world is {x}", True) == "in what part of the world are {x}"
    assert agree("what continent does {x} lie on", True) == "what continent do {x} lie on"
    assert agree("name the subregion {x} lies in", True) == "name the subregion {x} lie in"
    assert agree("{x} has which city as its capital", True) == "{x} have which city as their capital"
    assert agree("what is {x}'s subregion", True) == "what is {x}'s subregion"
    assert agree("which languages are spoken in {x} nowadays", True) == \
        "which languages are spoken in {x} nowadays"
    assert agree("in what part of the world is {x}", False) == "in what part of the world is {x}"


def _capital_questions(lands: Path, name: str, template: str, kind: str) -> list[str]:
    """The generated questions of one kind after the lands pack, loaded again as ``name``,
    asks for capitals with ``template`` alone."""
    manifest = json.loads((lands / "manifest.json").read_text(encoding="utf-8"))
    manifest["name"] = name
    manifest["questions"]["relations"]["capital"]["ask"] = [template]
    (lands / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    kqa.load_kg(lands, name)
    return [e.text for e in generated_examples(name, GenerateConfig(seed=0, views=1, typos=0.0)) if e.group == kind]


def test_composed_two_hop_questions_agree_in_number(lands: Path) -> None:
    texts = _capital_questions(lands, "lands2", "which city does {x} have as its capital", "text:borders>capital")
    assert texts and all(t.startswith(("which city do the neighbours of Land ",
                                       "which city do the countries that border Land ")) and
                         t.endswith(" have as their capital") for t in texts), texts


def test_generated_questions_read_hyphenated_schema_words_as_ask_does(lands: Path) -> None:
    """A pack's template "what is the capi-tal of {x}" becomes what `kqa ask` reads: the
    KG's own relation word, joined ("capital" is a relation name of the lands KG)."""
    from kqa.graph import load_graph

    assert {"capital", "borders", "country"} <= load_graph("lands").schema_words
    texts = _capital_questions(lands, "lands3", "what is the capi-tal of {x}", "text:capital")
    assert texts and all(t.startswith("what is the capital of Land ") for t in texts), texts


def test_identifier_names_are_asked_about_as_people_write_them(tmp_path: Path) -> None:
    """A KG whose names are identifiers ("disease_or_syndrome"): generated questions write them
    with spaces, and the mention span covers the written name."""
    path = tmp_path / "kb.tsv"
    path.write_text("virus\tcauses\tdisease_or_syndrome\nbacterium\tcauses\tdisease_or_syndrome\n", encoding="utf-8")
    kqa.load_kg(path, "umlsish")
    examples = generated_examples("umlsish", GenerateConfig(seed=0, negatives=0.0))
    about = [e for e in examples if "syndrome" in e.text]
    assert about and all("disease or syndrome" in e.text and "_" not in e.text for e in about)
    for e in about:
        start, end = e.mention_spans[0]
        assert e.text[start:end] == "disease or syndrome"


def test_a_kg_without_templates_is_asked_about_as_its_relation_names_read(tmp_path: Path) -> None:
    """A KG with no question templates: relation names that read as a verb ("orbits") or end in
    a preposition ("discovered by") are asked about as people would ("what orbits Jupiter",
    "what is Io discovered by"), never with a bare "(inverse)" or an unfilled placeholder, and
    two-hop questions chain the KG's relations (without them a model trained on such a KG
    answered every two-hop question with its first hop)."""
    path = tmp_path / "kb.tsv"
    path.write_text("Io\torbits\tJupiter\nEuropa\torbits\tJupiter\nIo\tdiscovered by\tGalileo\n"
                    "Europa\tdiscovered by\tGalileo\nGalileo\tborn in\tPisa\n", encoding="utf-8")
    kqa.load_kg(path, "moons")
    graph = kqa.open_kg("moons").graph
    examples = generated_examples("moons", GenerateConfig(seed=0, typos=0.0))
    assert not any("(inverse)" in e.text or "{" in e.text for e in examples)
    for group, label, inverse in [("text:orbits", "orbits", False), ("text:~orbits", "orbits", True),
                                  ("text:discovered by", "discovered by", False)]:
        wordings = {t.replace("{types}", "entities").replace("{type}", "entity")
                    for t in pick(generic_phrasing(label, inverse).ask, "train")}
        asked = [e for e in examples if e.group == group]
        assert asked and all(any(e.text == w.replace("{x}", x) for w in wordings for x in ("Io", "Europa", "Jupiter"))
                             for e in asked)
    assert "what does {x} orbit" in generic_phrasing("orbits").ask
    assert "what orbits {x}" in generic_phrasing("orbits", inverse=True).ask
    assert "what is {x} discovered by" in generic_phrasing("discovered by").ask
    assert "what is discovered by {x}" in generic_phrasing("discovered by", inverse=True).ask
    assert {"who discovered {x}", "which {type} discovered {x}"} <= set(generic_phrasing("discovered by").ask)
    assert "what did {x} discover" in generic_phrasing("discovered by", inverse=True).ask
    assert "which {types} orbit {x}" in generic_phrasing("orbits", inverse=True).ask
    assert [plural_noun(n) for n in ("moon", "city", "person", "church")] == ["moons", "cities", "people", "churches"]
    assert "what genre does {x} have" in generic_phrasing("has genre").ask
    assert generic_phrasing("capital").ask[0] == "what is the capital of {x}"
    two_hop = [e for e in examples if e.group == "text:discovered by>born in" and "Io" in e.text]
    assert two_hop and all([graph.label(a) for a in e.answers] == ["Pisa"] for e in two_hop)
    moons = [e for e in examples if e.group == "text:~born in>~discovered by"]
    assert moons and all(sorted(graph.label(a) for a in e.answers) == ["Europa", "Io"] for e in moons)


def test_doers_and_places_are_asked_about_as_people_ask() -> None:
    """"Where was the discoverer of Europa born" was answered with the discoverer (1.0): no
    training question named the doer of a "V-ed by" relation by its noun, nor asked "where"
    about a "born in". Now the agent noun comes from the verb by how English writes it, and
    the noun phrase composes two-hop questions; "where" asks about participles with "in"/"at"."""
    from kqa.generate import agent_noun

    assert [agent_noun(v) for v in ("discover", "direct", "found", "create", "compose", "own")] == \
        ["discoverer", "director", "founder", "creator", "composer", "owner"]
    assert agent_noun("affect") is None  # no common noun: no wording
    found = generic_phrasing("founded by")
    assert {"who is the founder of {x}", "which {type} is the founder of {x}"} <= set(pick(found.ask, "train"))
    assert "who was the founder of {x}" in pick(found.ask, "test")  # a held-out wording of the family
    assert {"the founder of {x}", "{x}'s founder"} <= set(found.noun)
    assert not any("affecter" in t for t in generic_phrasing("affected by").ask + generic_phrasing("affected by").noun)
    assert {"where was {x} born", "where is {x} born"} <= set(generic_phrasing("born in").ask)
    assert "where is {x} located" in generic_phrasing("located in").ask
    assert not any(t.startswith("where") for t in generic_phrasing("part of").ask + generic_phrasing("lives in").ask)
    assert not any(t.startswith("where") for t in generic_phrasing("born in", inverse=True).ask)


def test_irregular_verbs_are_asked_in_the_active_voice_too() -> None:
    """"who wrote Hamlet" about a KG relation "written by": the active voice of an irregular
    verb is not its participle ("who written X"), and before, irregular participles got no
    active voice at all, so a model trained on the generator's questions had never met "who
    wrote" (the works probe answered it with the year Hamlet was published)."""
    from kqa.generate import participle_base, past_tense

    assert [participle_base(w) for w in ("written", "discovered", "stopped", "founded", "found", "sung")] == \
        ["write", "discover", "stop", "found", "find", "sing"]
    assert participle_base("lives") is None and participle_base("part") is None
    assert [past_tense(v) for v in ("write", "discover", "find", "sing")] == ["wrote", "discovered", "found", "sang"]
    written = generic_phrasing("written by")
    assert {"who wrote {x}", "which {type} wrote {x}", "who is the writer of {x}"} <= set(written.ask)
    assert {"the {type} that wrote {x}", "the writer of {x}"} <= set(written.noun)
    assert not any("written {x}" in t for t in written.ask + written.noun)
    assert "what did {x} write" in generic_phrasing("written by", inverse=True).ask
    assert "where was {x} sold" in generic_phrasing("sold in").ask  # irregular, neither -ed nor -en


def test_a_relation_to_years_is_asked_when_not_where(tmp_path: Path) -> None:
    """"born in" a city is asked "where was X born"; "published in" a year is not asked
    "where was X published": its objects are literal values, not places. It is asked "when"
    (and "in what year", its values being years)."""
    path = tmp_path / "books.ttl"
    path.write_text('@prefix ex: <http://example.org/> .\n'
                    '@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .\n'
                    'ex:Emma ex:published_in "1815"^^xsd:gYear ; ex:located_in ex:London .\n'
                    'ex:Persuasion ex:published_in "1817"^^xsd:gYear ; ex:located_in ex:Bath .\n',
                    encoding="utf-8")
    kqa.load_kg(path, "books")
    examples = generated_examples("books", GenerateConfig(seed=0, typos=0.0, per_path=20))
    asked = {e.group: set() for e in examples}
    for e in examples:
        asked[e.group].add(e.text.split()[0])
    key = "text:http://example.org/"  # groups are named by the relations' keys
    assert "where" in asked[key + "located_in"] and "where" not in asked[key + "published_in"]
    assert "when" in asked[key + "published_in"] and "when" not in asked[key + "located_in"]
    graph = kqa.open_kg("books").graph
    generator = Generator(graph, Templates(), GenerateConfig())
    wordings = generator.generic(graph.relation_keys.index("http://example.org/published_in")).ask
    assert "in what year was {x} published" in wordings  # its values are all years
    assert not any("literal" in e.text for e in examples)  # "which year is ...", not "which literal:gYear"


def test_when_wordings_need_a_participle_and_years_for_in_which_year() -> None:
    from kqa.generate import when_wordings

    assert when_wordings("founded in", False) == ["when was {x} founded", "!when is {x} founded"]
    assert "in what year was {x} released" in when_wordings("released on", True)
    assert when_wordings("population", True) == when_wordings("has genre", True) == []


PROBES = sorted((Path(__file__).resolve().parents[1] / "benchmarks" / "phrasings").glob("*/kb.tsv"))


@pytest.mark.parametrize("kb", PROBES, ids=[p.parent.name for p in PROBES])
def test_every_hand_written_probe_asks_about_its_own_kg(kb: Path) -> None:
    """The hand-written probes of ``benchmarks/generic_kg.py --questions`` load as a user's
    file would, and every answer they expect names a node of their KG: a misspelt answer
    would count against the model as a miss, and nothing else would show it."""
    kqa.load_kg(kb, kb.parent.name)
    graph = kqa.open_kg(kb.parent.name).graph
    names = set(graph.node_names)
    lines = [line.split("\t") for line in (kb.parent / "questions.tsv").read_text(encoding="utf-8").splitlines()
             if line.strip()]
    assert lines and all(len(line) == 2 for line in lines)
    missing = [(q, a) for q, answers in lines for a in answers.split("|") if a not in names]
    assert not missing
    assert generated_examples(kb.parent.name, GenerateConfig(seed=0, per_path=1))  # and train on it
