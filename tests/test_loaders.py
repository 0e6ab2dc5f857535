"""Loader plugins: each format parses its good fixture into the right records, and refuses
bad input with a LoadError that names the file, the line and the field.

Most tests go through ``kqa.load.parse_source`` so the plugin manager, format detection by
extension and ``validate`` are exercised too. Fixtures live in ``tests/fixtures/loaders``;
malformed inputs are written to ``tmp_path`` by each test.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import kqa
from kqa.errors import KqaError, LoadError
from kqa.load import XSD, KGDocument, LiteralValue, parse_source
from kqa.plugins import get_plugins

FIXTURES = Path(__file__).parent / "fixtures" / "loaders"
EX = "http://example.org/"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
LANG_STRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"
SQL_NAME = 'O\'Brien "Bob"; DROP TABLE x; --'
RDF_FIXTURES = ["countries.nt", "countries.ttl", "countries.rdf", "countries.jsonld"]


# -- helpers ---------------------------------------------------------------------------------
def parse(path: Path, fmt: str | None = None) -> KGDocument:
    docs = parse_source(path, fmt)
    assert len(docs) == 1
    return docs[0]


def refuse(path: Path, fmt: str | None = None) -> LoadError:
    with pytest.raises(LoadError) as info:
        parse_source(path, fmt)
    return info.value


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def facts(doc: KGDocument) -> set[tuple[str, str, object]]:
    """Triples as plain tuples; a literal object becomes (value, datatype)."""
    return {(t.subject, t.relation, (t.object.value, t.object.datatype)
             if isinstance(t.object, LiteralValue) else t.object) for t in doc.triples}


def xsd(name: str) -> str:
    return XSD + name


# -- registration and format detection -------------------------------------------------------
def test_every_format_is_registered() -> None:
    loaders = get_plugins().loaders()
    assert {"tsv", "csv", "pipe", "delimited", "nt", "turtle", "rdfxml", "jsonld", "graphml",
            "jsongraph"} <= set(loaders)
    assert not [f for f in get_plugins().failures if f.plugin in ("rdf", "graphml", "jsongraph")]


@pytest.mark.parametrize(("name", "fmt"), [
    ("countries.tsv", "tsv"), ("countries.csv", "csv"), ("kb.txt", "delimited"),
    ("countries.nt", "nt"), ("countries.ttl", "turtle"), ("countries.rdf", "rdfxml"),
    ("countries.jsonld", "jsonld"), ("countries.graphml", "graphml"),
    ("countries.json", "jsongraph"),
])
def test_format_is_chosen_by_extension(name: str, fmt: str) -> None:
    assert parse(FIXTURES / name).format == fmt


@pytest.mark.parametrize(("suffix", "fmt"), [(".owl", "rdfxml"), (".xml", "rdfxml"),
                                             (".kg.json", "jsongraph"), (".psv", "pipe")])
def test_other_extensions(tmp_path: Path, suffix: str, fmt: str) -> None:
    source = {"rdfxml": "countries.rdf", "jsongraph": "countries.json", "pipe": "kb.txt"}[fmt]
    path = write(tmp_path, "data" + suffix, (FIXTURES / source).read_bytes())
    if fmt == "jsongraph":
        (tmp_path / "flags").mkdir()
        (tmp_path / "flags" / "fr.png").write_bytes((FIXTURES / "flags" / "fr.png").read_bytes())
    assert parse(path).format == fmt


def test_format_override_beats_the_extension(tmp_path: Path) -> None:
    path = write(tmp_path, "triples.dat", (FIXTURES / "countries.ttl").read_bytes())
    doc = parse(path, "turtle")
    assert doc.format == "turtle"
    assert (EX + "France", EX + "capital", EX + "Paris") in facts(doc)
    # A .json file read as JSON-LD instead of the jsongraph default.
    path = write(tmp_path, "graph.json", (FIXTURES / "countries.jsonld").read_bytes())
    assert parse(path, "jsonld").format == "jsonld"
    # A .txt file forced to TSV.
    path = write(tmp_path, "kb.txt", "a\tb\tc\n")
    assert facts(parse(path, "tsv")) == {("a", "b", "c")}


def test_unknown_extension_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "triples.dat", "a\tb\tc\n")
    error = refuse(path)
    assert error.path == str(path.resolve())
    assert error.line == 0 and error.field is None
    assert "cannot tell the format" in error.reason and ".ttl" in error.reason


def test_unknown_format_name_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "kb.tsv", "a\tb\tc\n")
    with pytest.raises(KqaError, match="unknown format 'yaml'"):
        parse_source(path, "yaml")


def test_missing_file_is_refused(tmp_path: Path) -> None:
    error = refuse(tmp_path / "nope.ttl")
    assert error.line == 0 and "no such file" in error.reason


# -- delimited -------------------------------------------------------------------------------
def test_tsv() -> None:
    doc = parse(FIXTURES / "countries.tsv")
    assert facts(doc) == {
        ("France", "capital", "Paris"),
        ("Paris", "located in", "France"),
        (SQL_NAME, "lives in", "Zürich"),
        ("Zürich", "twinned with", "東京"),
    }
    assert doc.duplicates == 1
    assert [t.line for t in doc.triples] == [1, 2, 5, 6]


def test_csv_with_header() -> None:
    doc = parse(FIXTURES / "countries.csv")
    assert facts(doc) == {
        ("France", "capital", "Paris"),
        ("Paris", "located in", "France"),
        (SQL_NAME, "lives in", "Zürich"),
        ("Zürich, Switzerland", "twinned with", "東京"),
    }
    assert doc.duplicates == 1
    assert doc.triples[0].line == 2


def test_csv_with_datatype_column() -> None:
    doc = parse(FIXTURES / "typed.csv")
    assert facts(doc) == {
        ("France", "capital", "Paris"),
        ("France", "population", ("66078000", xsd("integer"))),
        ("France", "area", ("640679.5", xsd("double"))),
        ("France", "founded", ("0843-08-10", xsd("date"))),
        ("France", "motto", ("Liberté, égalité, fraternité", xsd("string"))),
    }
    assert doc.duplicates == 1


def test_pipe_txt_metaqa() -> None:
    doc = parse(FIXTURES / "kb.txt")
    assert doc.format == "delimited"
    assert facts(doc) == {
        ("Blade Runner", "directed_by", "Ridley Scott"),
        ("Blade Runner", "release_year", "1982"),
        ("Blade Runner", "starred_actors", "Harrison Ford"),
        ("Ridley Scott", "directed_by", 'Nobody\'s "Film"; DROP TABLE x; --'),
    }
    assert doc.duplicates == 1
    assert [t.line for t in doc.triples] == [1, 2, 3, 4]


# -- RDF -------------------------------------------------------------------------------------
RDF_FACTS = {
    (EX + "France", RDF_TYPE, EX + "Country"),
    (EX + "France", EX + "capital", EX + "Paris"),
    (EX + "France", EX + "population", ("66078000", xsd("integer"))),
    (EX + "France", EX + "motto", ("Liberté, égalité, fraternité", LANG_STRING)),
    (EX + "Paris", EX + "area", ("105.4", xsd("double"))),
    (EX + "Bob", EX + "livesIn", EX + "Zürich"),
}


@pytest.mark.parametrize("name", RDF_FIXTURES)
def test_rdf_formats_agree(name: str) -> None:
    """The same graph in four syntaxes gives the same triples, names, types and aliases."""
    doc = parse(FIXTURES / name)
    assert facts(doc) == RDF_FACTS  # labels became names, not triples
    assert doc.duplicates == 1
    entities = doc.entities
    assert set(entities) == {EX + k for k in ("France", "Country", "Paris", "Bob", "Zürich")}
    france = entities[EX + "France"]
    assert france.name == "France"  # English label preferred over German
    assert set(france.aliases) == {"Frankreich", "French Republic"}
    assert france.type == "sovereign state"  # rdf:type → the class's label
    assert entities[EX + "Bob"].name == SQL_NAME  # foaf:name
    assert entities[EX + "Zürich"].name == "Zürich"  # schema:name
    assert entities[EX + "Paris"].name == "Paris"
    names = {k: r.name for k, r in doc.relations.items()}
    assert names == {RDF_TYPE: "type", EX + "capital": "capital city",
                     EX + "population": "population", EX + "motto": "motto", EX + "area": "area",
                     EX + "livesIn": "lives in"}


def test_ntriples_keeps_line_numbers() -> None:
    doc = parse(FIXTURES / "countries.nt")
    lines = {(t.subject, t.relation): t.line for t in doc.triples}
    assert lines[(EX + "France", RDF_TYPE)] == 1
    assert lines[(EX + "Paris", EX + "area")] == 10
    assert doc.entities[EX + "Bob"].line == 11


def test_rdf_unlabelled_nodes_and_blank_nodes(tmp_path: Path) -> None:
    ttl = """@prefix ex: <http://example.org/> .
ex:Blade_Runner ex:directedBy ex:RidleyScott ;
    ex:note [ ex:text "anonymous" ] ;
    ex:title "Blade Runner"^^ex:customType .
"""
    path = write(tmp_path, "films.ttl", ttl)
    doc = parse(path)
    assert doc.entities[EX + "Blade_Runner"].name == "blade runner"  # humanized local name
    assert doc.entities[EX + "RidleyScott"].name == "ridley scott"
    assert (EX + "Blade_Runner", EX + "title", ("Blade Runner", EX + "customType")) in facts(doc)
    assert doc.relations[EX + "directedBy"].name == "directed by"
    blank = [k for k in doc.entities if k.startswith("_:")]
    assert blank == ["_:b1"]
    assert (blank[0], EX + "text", ("anonymous", xsd("string"))) in facts(doc)
    # Blank-node keys do not change from one load of the file to the next.
    assert facts(parse(path)) == facts(doc)


def test_rdfxml_with_declared_latin1_encoding(tmp_path: Path) -> None:
    xml = ('<?xml version="1.0" encoding="ISO-8859-1"?>\n'
           '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
           'xmlns:ex="http://example.org/">\n'
           '<rdf:Description rdf:about="http://example.org/a"><ex:p>café</ex:p></rdf:Description>\n'
           '</rdf:RDF>\n').encode("latin-1")
    doc = parse(write(tmp_path, "latin.rdf", xml))
    assert facts(doc) == {(EX + "a", EX + "p", ("café", xsd("string")))}


def test_jsonld_remote_context_is_not_fetched(tmp_path: Path) -> None:
    path = write(tmp_path, "remote.jsonld",
                 '{\n  "@context": "https://schema.org/",\n  "@id": "http://x/a", "name": "A"\n}\n')
    error = refuse(path)
    assert (error.line, error.field) == (2, "@context")
    assert "https://schema.org/" in error.reason


# -- GraphML ---------------------------------------------------------------------------------
def test_graphml() -> None:
    doc = parse(FIXTURES / "countries.graphml")
    assert facts(doc) == {
        ("FRA", "capital", "PAR"),
        ("BOB", "lives in", "ZRH"),
        ("FRA", "population", ("66078000", xsd("integer"))),
        ("FRA", "area", ("640679.5", xsd("double"))),
        ("FRA", "landlocked", ("false", xsd("boolean"))),
        ("FRA", "motto", ("Liberté, égalité, fraternité", xsd("string"))),
    }
    assert doc.duplicates == 1
    france = doc.entities["FRA"]
    assert (france.name, france.type, france.aliases) == ("France", "country",
                                                          ["French Republic", "La France"])
    assert france.image == FIXTURES / "flags" / "fr.png"
    assert france.line == 14
    assert doc.entities["PAR"].type == "city"  # the <default> of the type key
    assert doc.entities["BOB"].name == SQL_NAME
    assert doc.entities["ZRH"].aliases == ["Zurich", "Zuerich"]  # comma-separated
    assert {t.line for t in doc.triples if t.relation == "capital"} == {27}


def test_graphml_edge_relation_synonyms(tmp_path: Path) -> None:
    xml = """<?xml version="1.0"?>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns">
  <key id="k" for="edge" attr.name="key" attr.type="string"/>
  <key id="t" for="edge" attr.name="type" attr.type="string"/>
  <graph edgedefault="undirected">
    <node id="a"/><node id="b"/>
    <edge source="b" target="a"><data key="k">knows</data></edge>
    <edge source="a" target="b"><data key="t">likes</data></edge>
  </graph>
</graphml>
"""
    doc = parse(write(tmp_path, "g.graphml", xml))
    # Undirected edges keep the direction the file wrote them in.
    assert facts(doc) == {("b", "knows", "a"), ("a", "likes", "b")}


# -- jsongraph -------------------------------------------------------------------------------
def test_jsongraph() -> None:
    doc = parse(FIXTURES / "countries.json")
    assert facts(doc) == {
        ("FRA", "capital", "PAR"),
        ("BOB", "lives in", "ZRH"),
        ("FRA", "population", ("66078000", xsd("integer"))),
        ("FRA", "area", ("640679.5", xsd("double"))),
        ("FRA", "landlocked", ("false", xsd("boolean"))),
        ("FRA", "languages", ("French", xsd("string"))),
        ("FRA", "languages", ("Occitan", xsd("string"))),
        ("FRA", "motto", ("Liberté, égalité, fraternité", xsd("string"))),
        ("FRA", "founded", ("0843-08-10", xsd("date"))),
    }
    assert doc.duplicates == 1
    assert doc.description == "A few countries, their capitals and one troublesome name"
    capital = doc.relations["capital"]
    assert (capital.name, capital.inverse_name) == ("capital", "capital of")
    france = doc.entities["FRA"]
    assert (france.name, france.type, france.aliases) == ("France", "country",
                                                          ["French Republic", "La France"])
    assert france.image == FIXTURES / "flags" / "fr.png"
    assert france.line == 8
    assert doc.entities["BOB"].name == SQL_NAME
    assert doc.entities["ZRH"].aliases == ["東京の友"]
    lines = {(t.subject, t.relation): t.line for t in doc.triples}
    assert lines[("FRA", "capital")] == 17 and lines[("FRA", "founded")] == 20


def test_jsongraph_networkx_node_link(tmp_path: Path) -> None:
    """networkx's node-link JSON: "links", integer ids, attributes flat on the node."""
    data = {"directed": True, "multigraph": False, "graph": {},
            "nodes": [{"id": 1, "name": "One", "weight": 2.5}, {"id": 2}],
            "links": [{"source": 1, "target": 2, "relation": "next"}]}
    doc = parse(write(tmp_path, "nl.json", json.dumps(data)))
    assert facts(doc) == {("1", "next", "2"), ("1", "weight", ("2.5", xsd("double")))}
    assert doc.entities["1"].name == "One"


def test_jsongraph_100k_edges_is_fast(tmp_path: Path) -> None:
    n = 100_000
    data = {"nodes": [{"id": f"n{i}"} for i in range(n)],
            "edges": [{"source": f"n{i}", "relation": "r", "target": f"n{(i * 7 + 1) % n}"}
                      for i in range(n)]}
    path = write(tmp_path, "big.json", json.dumps(data, indent=1))
    get_plugins().loaders()  # plugin imports are not part of the parse time
    started = time.perf_counter()
    doc = parse(path)
    elapsed = time.perf_counter() - started
    assert len(doc.triples) == n
    assert doc.triples[-1].line > n  # real line numbers, even at the end of a big file
    assert elapsed < 10, f"100k edges took {elapsed:.1f}s"


# -- malformed input, every loader -----------------------------------------------------------
# One file per format whose line 2 holds a byte that is not UTF-8.
NOT_UTF8 = {
    "kb.tsv": b"a\tb\tc\nFran\xe7e\tcapital\tParis\n",
    "kb.csv": b"subject,relation,object\nFran\xe7e,capital,Paris\n",
    "kb.txt": b"a|b|c\nFran\xe7e|capital|Paris\n",
    "kb.nt": b"<http://x/a> <http://x/b> <http://x/c> .\n"
             b"<http://x/a> <http://x/b> \"Fran\xe7e\" .\n",
    "kb.ttl": b"@prefix ex: <http://x/> .\nex:a ex:b \"Fran\xe7e\" .\n",
    "kb.rdf": b'<?xml version="1.0"?>\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax'
              b'-ns#"><!-- Fran\xe7e --></rdf:RDF>\n',
    "kb.jsonld": b'{"@id": "http://x/a",\n "http://x/b": "Fran\xe7e"}\n',
    "kb.graphml": b'<?xml version="1.0"?>\n<graphml xmlns="http://graphml.graphdrawing.org/xmlns">'
                  b'<!-- Fran\xe7e --></graphml>\n',
    "kb.json": b'{"nodes": [{"id": "a"},\n {"id": "Fran\xe7e"}]}\n',
}


@pytest.mark.parametrize("name", sorted(NOT_UTF8))
def test_non_utf8_names_the_line(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, name, NOT_UTF8[name])
    error = refuse(path)
    assert error.path == str(path.resolve())
    assert error.line == 2
    assert "UTF-8" in error.reason


@pytest.mark.parametrize("name", sorted(NOT_UTF8))
def test_zero_byte_file(tmp_path: Path, name: str) -> None:
    error = refuse(write(tmp_path, name, b""))
    assert (error.line, error.field) == (0, None)
    assert "empty" in error.reason


# A file with nothing but blank lines is a whole-file problem (line 0), except where the
# delimited loader first needs something on line 1: the CSV header, or a line to sniff.
BLANK = {"kb.csv": (1, "header"), "kb.txt": (1, "cannot tell the delimiter")}


@pytest.mark.parametrize("name", sorted(NOT_UTF8))
def test_blank_file(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, name, "\n   \n\n  \r\n\n")
    error = refuse(path)
    line, reason = BLANK.get(name, (0, ""))
    assert error.path == str(path.resolve())
    assert (error.line, error.field) == (line, None)
    assert reason in error.reason
    assert any(word in error.reason for word in ("no triples", "whitespace", "no data", "no nodes",
                                                 "header", "delimiter"))


def test_blank_tsv_with_tab_only_lines(tmp_path: Path) -> None:
    error = refuse(write(tmp_path, "kb.tsv", "\n\t\n \t \n"))
    assert (error.line, error.field) == (0, None)


# Two-line headers, so the content after them starts on line 3.
RDF_HEAD = ('<?xml version="1.0"?>\n<rdf:RDF xmlns:ex="http://x/" '
            'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n')
GRAPHML_HEAD = '<?xml version="1.0"?>\n<graphml xmlns="http://graphml.graphdrawing.org/xmlns">\n'
NT = "<http://x/a> <http://x/b> <http://x/c> .\n"
TWO_NODES = '{"nodes": [{"id": "a"}, {"id": "b"}],\n "edges": [\n'

# name, content, expected line, expected field, a piece of the reason
BAD_INPUT = [
    # delimited
    ("truncated.tsv", "a\tb\tc\nd\te\n", 2, "object", "truncated"),
    ("empty_field.tsv", "a\tb\tc\nd\t\tf\n", 2, "relation", "empty"),
    ("too_many.tsv", "a\tb\tc\td\n", 1, "object", "found 4"),
    ("no_object_column.csv", "subject,relation,thing\na,b,c\n", 1, "object", "no object column"),
    ("truncated.csv", "subject,relation,object\na,b,c\nd,e\n", 3, "object", "expected 3 columns"),
    ("unclosed_quote.csv", 'subject,relation,object\na,b,"c\n', 2, None, "malformed CSV"),
    ("truncated.txt", "a|b|c\nd|e\n", 2, "object", "truncated"),
    # N-Triples
    ("truncated.nt", NT + "<http://x/a> <http://x/b>\n", 2, None, "truncated"),
    ("unterminated.nt", NT + '\n<http://x/a> <http://x/b> "c .\n', 3, None, "N-Triples"),
    ("garbage.nt", NT.strip() + " trailing\n", 1, None, "garbage"),
    # Turtle
    ("truncated.ttl", "@prefix ex: <http://x/> .\n\nex:a ex:b ex:c .\nex:a ex:b\n", 4, None,
     "objectList expected"),
    ("unterminated.ttl", '@prefix ex: <http://x/> .\nex:a ex:b "oops .\nex:d ex:e ex:f .\n', 2,
     None, "newline found in string"),
    ("unbound_prefix.ttl", "@prefix ex: <http://x/> .\nex:a ex:b ex:c .\nfoo:a ex:b ex:c .\n", 3,
     None, "foo"),
    # RDF/XML
    ("mismatched.rdf", RDF_HEAD + '<rdf:Description rdf:about="http://x/a">\n</rdf:RDF>\n', 4,
     None, "mismatched tag"),
    ("bad_attribute.rdf", RDF_HEAD + '<rdf:Description rdf:about="http://x/a">\n'
     '  <ex:p rdf:parseType="Bogus" rdf:resource="http://x/b">x</ex:p>\n'
     "</rdf:Description>\n</rdf:RDF>\n", 4, None, "invalid rdfxml"),
    ("empty_graph.rdf", RDF_HEAD + "</rdf:RDF>\n", 0, None, "no triples"),
    # JSON-LD
    ("syntax.jsonld", '{"@id": "http://x/a",\n "http://x/b": [1,]}\n', 2, None, "invalid JSON"),
    ("empty.jsonld", "{}\n", 0, None, "no triples"),
    # GraphML
    ("mismatched.graphml", GRAPHML_HEAD + '<graph>\n<node id="a">\n</graph></graphml>\n', 5, None,
     "mismatched tag"),
    ("no_relation.graphml", GRAPHML_HEAD + '<graph edgedefault="directed">\n<node id="n1"/>\n'
     '<node id="n2"/>\n<edge source="n1" target="n2"/>\n</graph>\n</graphml>\n', 6, "relation",
     "edge n1->n2"),
    ("unknown_node.graphml", GRAPHML_HEAD
     + '<key id="r" for="edge" attr.name="relation" attr.type="string"/>\n'
     '<graph edgedefault="directed">\n<node id="n1"/>\n'
     '<edge source="n1" target="n9"><data key="r">knows</data></edge>\n</graph>\n</graphml>\n',
     6, "target", "unknown node 'n9'"),
    ("duplicate_node.graphml", GRAPHML_HEAD + '<graph>\n<node id="n1"/>\n<node id="n1"/>\n'
     "</graph>\n</graphml>\n", 5, "id", "duplicate node id 'n1' (first declared on line 4)"),
    ("bad_int.graphml", GRAPHML_HEAD
     + '<key id="p" for="node" attr.name="population" attr.type="int"/>\n<graph>\n'
     '<node id="n1"><data key="p">many</data></node>\n</graph>\n</graphml>\n', 5, None, "many"),
    ("not_graphml.graphml", '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>\n',
     2, None, "not GraphML"),
    # jsongraph
    ("syntax.json", '{"nodes": [{"id": "a"}\n {"id": "b"}]}\n', 2, None, "invalid JSON"),
    ("unknown_target.json", TWO_NODES + '  {"source": "a", "relation": "r", "target": "b"},\n'
     '  {"source": "a", "relation": "r",\n   "target": "Pariss"}\n]}\n',
     5, "edges[1].target", "unknown node 'Pariss'"),
    ("unknown_source.json", '{"nodes": [{"id": "a"}],\n'
     ' "links": [{"source": "zz", "relation": "r", "target": "a"}]}\n',
     2, "links[0].source", "unknown node 'zz'"),
    ("duplicate_id.json", '{"nodes": [\n {"id": "a"},\n {"id": "a"}\n]}\n', 3, "nodes[1].id",
     "duplicate node id 'a' (first declared on line 2)"),
    ("missing_id.json", '{"nodes": [\n {"name": "no id"}\n]}\n', 2, "nodes[0].id", "missing"),
    ("missing_relation.json", TWO_NODES + '{"source": "a", "target": "b"}]}\n', 3,
     "edges[0].relation", "missing"),
    ("target_and_value.json", TWO_NODES + '{"source": "a", "relation": "r", "target": "b",\n'
     ' "value": 1}]}\n', 4, "edges[0].value", "both"),
    ("neither.json", TWO_NODES + '{"source": "a", "relation": "r"}]}\n', 3, "edges[0].target",
     "neither"),
    ("missing_image.json", '{"nodes": [\n {"id": "a",\n  "image": "flags/none.png"}\n]}\n', 3,
     "nodes[0].image", "not found"),
    ("bad_attribute.json", '{"nodes": [{"id": "a", "attributes": {"x": {"nested": 1}}}]}\n', 1,
     "nodes[0].attributes.x", "unsupported value"),
    ("top_level_array.json", '[{"id": "a"}]\n', 1, None, "JSON object"),
    ("nodes_not_array.json", '{"nodes": {"id": "a"}}\n', 1, "nodes", "must be an array"),
    ("trailing.json", '{"nodes": [{"id": "a"}]}\n{"more": 1}\n', 2, None, "extra data"),
]


@pytest.mark.parametrize(("name", "content", "line", "field", "reason"), BAD_INPUT,
                         ids=[case[0] for case in BAD_INPUT])
def test_malformed_input_is_refused_precisely(tmp_path: Path, name: str, content: str, line: int,
                                              field: str | None, reason: str) -> None:
    path = write(tmp_path, name, content)
    error = refuse(path)
    assert error.path == str(path.resolve())
    assert (error.line, error.field) == (line, field), error
    assert reason in error.reason
    assert str(error).startswith(str(path.resolve()))


# -- duplicates and awkward names ------------------------------------------------------------
DUPLICATED = {
    "d.tsv": "a\tr\tb\na\tr\tb\na\tr\tc\n",
    "d.csv": "subject,relation,object\na,r,b\na,r,b\na,r,c\n",
    "d.txt": "a|r|b\na|r|b\na|r|c\n",
    "d.nt": "<http://x/a> <http://x/r> <http://x/b> .\n<http://x/a> <http://x/r> <http://x/b> .\n"
            "<http://x/a> <http://x/r> <http://x/c> .\n",
    "d.ttl": "<http://x/a> <http://x/r> <http://x/b>, <http://x/b>, <http://x/c> .\n",
    "d.rdf": '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:x="http://x/">'
             '<rdf:Description rdf:about="http://x/a"><x:r rdf:resource="http://x/b"/>'
             '<x:r rdf:resource="http://x/b"/><x:r rdf:resource="http://x/c"/></rdf:Description>'
             '</rdf:RDF>',
    "d.jsonld": '{"@id": "http://x/a", "http://x/r": [{"@id": "http://x/b"}, {"@id": "http://x/b"},'
                ' {"@id": "http://x/c"}]}',
    "d.graphml": '<graphml xmlns="http://graphml.graphdrawing.org/xmlns"><key id="r" for="edge" '
                 'attr.name="relation" attr.type="string"/><graph edgedefault="directed">'
                 '<node id="a"/><node id="b"/><node id="c"/>'
                 '<edge source="a" target="b"><data key="r">r</data></edge>'
                 '<edge source="a" target="b"><data key="r">r</data></edge>'
                 '<edge source="a" target="c"><data key="r">r</data></edge></graph></graphml>',
    "d.json": '{"nodes": [{"id": "a"}, {"id": "b"}, {"id": "c"}], "edges": ['
              '{"source": "a", "relation": "r", "target": "b"},'
              '{"source": "a", "relation": "r", "target": "b"},'
              '{"source": "a", "relation": "r", "target": "c"}]}',
}


@pytest.mark.parametrize("name", sorted(DUPLICATED))
def test_duplicates_are_dropped_and_counted(tmp_path: Path, name: str) -> None:
    doc = parse(write(tmp_path, name, DUPLICATED[name]))
    objects = sorted(t.object.rsplit("/", 1)[-1] for t in doc.triples if isinstance(t.object, str))
    assert objects == ["b", "c"]
    assert doc.duplicates == 1


AWKWARD = ['O\'Brien "Bob"', "'; DROP TABLE entities; --", "Zürich 東京 🚀", 'back\\slash %_ ?']


@pytest.mark.parametrize("fmt", ["tsv", "jsongraph", "turtle", "graphml"])
def test_awkward_names_survive(tmp_path: Path, fmt: str) -> None:
    if fmt == "tsv":
        text = "".join(f"{n}\tknows\t{n}!\n" for n in AWKWARD)
        path, want = write(tmp_path, "a.tsv", text), set(AWKWARD)
        names = {t.subject for t in parse(path).triples}
    elif fmt == "jsongraph":
        data = {"nodes": [{"id": n, "name": n} for n in AWKWARD]}
        doc = parse(write(tmp_path, "a.json", json.dumps(data, ensure_ascii=False)))
        names, want = {e.name for e in doc.entities.values()}, set(AWKWARD)
    elif fmt == "turtle":
        body = "".join(f'ex:n{i} rdfs:label {json.dumps(n, ensure_ascii=False)} ; ex:p ex:q .\n'
                       for i, n in enumerate(AWKWARD))
        text = ("@prefix ex: <http://x/> .\n"
                "@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n" + body)
        doc = parse(write(tmp_path, "a.ttl", text))
        names = {doc.entities[f"http://x/n{i}"].name for i in range(len(AWKWARD))}
        want = set(AWKWARD)
    else:
        from xml.sax.saxutils import escape

        nodes = "".join(f'<node id="n{i}"><data key="n">{escape(n)}</data></node>'
                        for i, n in enumerate(AWKWARD))
        xml = ('<graphml xmlns="http://graphml.graphdrawing.org/xmlns"><key id="n" for="node" '
               f'attr.name="name" attr.type="string"/><graph>{nodes}</graph></graphml>')
        doc = parse(write(tmp_path, "a.graphml", xml))
        names, want = {e.name for e in doc.entities.values()}, set(AWKWARD)
    assert names == want


# -- end to end: file → store → open_kg ------------------------------------------------------
RDF_COUNTS = (6, 5, 6, 3, 0)  # triples, entities, relations, literals, images
END_TO_END = [
    ("countries.tsv", (4, 5, 4, 0, 0), SQL_NAME),
    ("countries.csv", (4, 6, 4, 0, 0), SQL_NAME),
    ("typed.csv", (5, 2, 5, 4, 0), "France"),
    ("kb.txt", (4, 5, 3, 0, 0), 'Nobody\'s "Film"; DROP TABLE x; --'),
    ("countries.nt", RDF_COUNTS, SQL_NAME),
    ("countries.ttl", RDF_COUNTS, SQL_NAME),
    ("countries.rdf", RDF_COUNTS, SQL_NAME),
    ("countries.jsonld", RDF_COUNTS, SQL_NAME),
    ("countries.graphml", (6, 4, 6, 4, 1), SQL_NAME),
    ("countries.json", (9, 4, 8, 7, 1), SQL_NAME),
]


@pytest.mark.parametrize(("name", "counts", "entity"), END_TO_END, ids=[c[0] for c in END_TO_END])
def test_load_kg_end_to_end(db_url: str, name: str, counts: tuple[int, ...], entity: str) -> None:
    kg_name = "kg " + name.replace(".", "_")
    summary = kqa.load_kg(FIXTURES / name, kg_name)
    assert summary.duplicates_skipped == 1  # every fixture repeats one triple
    info = kqa.open_kg(kg_name).info()
    assert (info.triples, info.entities, info.relations, info.literals, info.images) == counts
    assert info.sources == [str((FIXTURES / name).resolve())]
    shown = kqa.open_kg(kg_name).show(entity)
    assert shown["name"] == entity
    assert shown["facts"]
