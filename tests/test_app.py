"""The web UI, in-process with Streamlit's AppTest (the conftest KQA_HOME fixture applies),
and the pure helpers of :mod:`kqa.ui` it draws with.

Pages are picked with the ``page`` query parameter (``?page=plugins`` makes that page the start
page), see ``app.py``.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

import kqa
import kqa.api
from kqa import ui
from kqa.errors import KqaError, LoadError
from kqa.plugins import get_plugins

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "app.py"
FIXTURES = Path(__file__).parent / "fixtures" / "ui"

_spec = importlib.util.spec_from_file_location("ui_tinykg", FIXTURES / "tinykg.py")
tinykg = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(tinykg)  # type: ignore[union-attr]


def open_app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=30)
    if page:
        at.query_params["page"] = page
    return at.run()


def no_traceback(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]


def texts(elements: Any) -> list[str]:
    return [e.value for e in elements]


def graphviz_sources(at: AppTest) -> list[str]:
    return [g.proto.spec for g in at.get("graphviz_chart")]


def table(at: AppTest, *columns: str) -> Any:
    """The (first) dataframe on the page with these columns first, as a pandas DataFrame."""
    for frame in [*at.table, *at.dataframe]:
        value = frame.value
        if list(value.columns)[:len(columns)] == list(columns):
            return value
    raise AssertionError(f"no table with columns {columns}")


# -- Knowledge page -----------------------------------------------------------------------------


def test_load_tsv_by_path_shows_summary() -> None:
    at = open_app()
    no_traceback(at)
    assert at.title[0].value == "Knowledge"
    assert "No knowledge graphs yet" in " ".join(texts(at.info))
    at.radio(key="load_source").set_value("Path on the server").run()
    at.text_input(key="load_path").set_value(str(tinykg.MOVIES_TSV)).run()
    at.text_input(key="load_name").set_value("films").run()
    at.button(key="load_go").click().run()
    no_traceback(at)
    assert not at.error
    summary = " ".join(texts(at.success))
    assert "Loaded 8 triples" in summary and "KG 'films'" in summary
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["triples"] == "8" and metrics["relations"] == "3"
    assert at.selectbox(key="browse_kg").value == "films"
    assert [k.name for k in kqa.list_kgs()] == ["films"]


def test_upload_keeps_file_name_and_extension() -> None:
    at = open_app()
    at.file_uploader(key="load_upload").set_value(
        ("movies.tsv", tinykg.MOVIES_TSV.read_bytes(), "text/tab-separated-values")).run()
    at.button(key="load_go").click().run()
    no_traceback(at)
    assert not at.error
    assert "KG 'movies'" in " ".join(texts(at.success))  # the name came from the file's stem
    info = kqa.open_kg("movies").info()
    assert info.triples == 8 and info.sources[0].endswith("movies.tsv")


def test_malformed_upload_shows_file_and_line_and_loads_nothing() -> None:
    at = open_app()
    at.file_uploader(key="load_upload").set_value(
        ("bad.tsv", tinykg.BAD_TSV.read_bytes(), "text/tab-separated-values")).run()
    at.button(key="load_go").click().run()
    no_traceback(at)
    errors = texts(at.error)
    assert len(errors) == 1
    # the loader's file:line message, naming the uploaded file (not the temporary folder)
    assert errors[0].startswith("Nothing was loaded. bad.tsv:3 [")
    assert "found 2" in errors[0]
    assert not at.success
    assert kqa.list_kgs() == []


def test_malformed_path_shows_file_and_line() -> None:
    at = open_app()
    at.radio(key="load_source").set_value("Path on the server").run()
    at.text_input(key="load_path").set_value(str(tinykg.BAD_TSV)).run()
    at.button(key="load_go").click().run()
    no_traceback(at)
    assert f"{tinykg.BAD_TSV}:3" in " ".join(texts(at.error))
    assert kqa.list_kgs() == []


def test_append_and_replace_modes(tmp_path: Path) -> None:
    kqa.load_kg(tinykg.MOVIES_TSV, "movies")
    extra = tmp_path / "more.tsv"
    extra.write_text("Prometheus\tdirected_by\tRidley Scott\n", encoding="utf-8")
    at = open_app()
    at.radio(key="load_source").set_value("Path on the server").run()
    at.text_input(key="load_path").set_value(str(extra)).run()
    at.text_input(key="load_name").set_value("movies").run()
    at.button(key="load_go").click().run()
    error = " ".join(texts(at.error))  # create refuses, saying what to do here
    assert "already exists" in error and "choose 'append' or 'replace'" in error
    assert kqa.open_kg("movies").info().triples == 8
    at.radio(key="load_mode").set_value("append").run()
    at.button(key="load_go").click().run()
    no_traceback(at)
    assert kqa.open_kg("movies").info().triples == 9
    at.radio(key="load_mode").set_value("replace").run()
    at.button(key="load_go").click().run()
    assert kqa.open_kg("movies").info().triples == 1


def test_browse_entity_shows_facts_image_and_neighbourhood(tmp_path: Path) -> None:
    tinykg.load_movies(tmp_path / "src")
    at = open_app()
    no_traceback(at)
    at.text_input(key="entity_query").set_value("alien").run()
    no_traceback(at)
    assert at.subheader[0].value == "Alien"
    facts = table(at, "subject", "relation", "object")
    assert set(facts["object"]) == {"Ridley Scott", "Sigourney Weaver", "1979"}
    assert "directed by" in set(facts["relation"])
    assert at.image and at.image[0].captions == ["Alien"], "the entity's image is shown"
    (dot,) = graphviz_sources(at)
    assert '"Alien" -> "Ridley Scott" [label="directed by"]' in dot


def test_fuzzy_search_and_jump_to_neighbour() -> None:
    kqa.load_kg(tinykg.MOVIES_TSV, "movies")
    at = open_app()
    at.text_input(key="entity_query").set_value("blade runer").run()  # a typo
    assert at.subheader[0].value == "Blade Runner"
    at.selectbox(key="jump").set_value("Harrison Ford").run()
    no_traceback(at)
    assert at.text_input(key="entity_query").value == "Harrison Ford"
    assert at.subheader[0].value == "Harrison Ford"
    assert list(table(at, "subject", "relation", "object")["subject"]) == ["Blade Runner"]


def test_countries_is_selected_by_default() -> None:
    kqa.load_kg(tinykg.MOVIES_TSV, "aaa")
    kqa.load_kg(tinykg.MOVIES_TSV, "countries")
    at = open_app()
    assert at.selectbox(key="browse_kg").value == "countries"
    at = open_app("ask")
    assert at.selectbox(key="ask_kg").value == "countries"


# -- errors -------------------------------------------------------------------------------------


def test_unexpected_error_is_a_message_with_details(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> list[Any]:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(kqa.api, "list_kgs", broken)
    at = open_app()
    no_traceback(at)
    assert texts(at.error) == ["Something went wrong: RuntimeError: disk on fire"]
    details = [e for e in at.expander if e.label == "Details"]
    assert details and "disk on fire" in details[0].code[0].value


def test_kqa_error_is_its_message(monkeypatch: pytest.MonkeyPatch) -> None:
    def locked(*_a: Any, **_k: Any) -> list[Any]:
        raise KqaError("the store is locked; try again")

    monkeypatch.setattr(kqa.api, "list_kgs", locked)
    at = open_app("plugins")  # no KG calls there: the page works
    no_traceback(at)
    assert not at.error
    at = open_app()
    assert texts(at.error) == ["the store is locked; try again"]
    assert not [e for e in at.expander if e.label == "Details"]


# -- Plugins page -------------------------------------------------------------------------------


class Throwaway:
    class Loader:
        name = "throwaway"
        extensions = (".throw",)

        def parse(self, path, options):  # type: ignore[no-untyped-def]
            raise LoadError(path, 7, "subject", "thrown away")

    @kqa.hookimpl
    def register_loaders(self, register):  # type: ignore[no-untyped-def]
        register(self.Loader())


class Exploding:
    @kqa.hookimpl
    def register_loaders(self, register):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")


def test_plugins_page_lists_builtins_throwaway_and_failures(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(kqa.api, "list_models", raising=False)
    plugins = get_plugins()
    plugins.register(Throwaway(), name="throwaway")
    plugins.register(Exploding(), name="exploding")
    try:
        at = open_app("plugins")
        no_traceback(at)
        assert at.title[0].value == "Plugins"
        plugin_table = table(at, "plugin").set_index("plugin")
        assert {"tsv", "csv"} <= set(plugin_table.loc["delimited", "loaders"].split(", "))
        assert plugin_table.loc["delimited", "version"] == kqa.__version__
        assert "register_loaders" in plugin_table.loc["delimited", "hooks"]
        assert plugin_table.loc["throwaway", "loaders"] == "throwaway"
        assert plugin_table.loc["exploding", "status"] == "failed"
        assert any("exploding" in e and "RuntimeError: boom" in e for e in texts(at.error))
        assert "no models yet" in texts(at.info)
        # the Knowledge page accepts the plugin's extension for uploads
        at = open_app()
        assert ".throw" in at.file_uploader(key="load_upload").allowed_type
    finally:
        plugins.unregister("throwaway")
        plugins.unregister("exploding")
    at = open_app("plugins")
    assert "throwaway" not in set(table(at, "plugin")["plugin"])


MODELS = [{"name": "movies-v1", "kg": "movies", "encoder": "minilm", "fusion": "gated",
           "path": "/models/movies-v1", "metrics": {"hits@1": 0.9}},
          {"name": "other", "kg": "other", "encoder": "minilm", "fusion": "concat",
           "path": "/models/other"}]


def test_plugins_page_shows_each_models_encoder_and_fusion(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kqa.api, "list_models", lambda: MODELS, raising=False)
    at = open_app("plugins")
    no_traceback(at)
    models = table(at, "name", "kg", "encoder")
    assert list(models["fusion"]) == ["gated", "concat"]
    at = open_app("models")
    no_traceback(at)
    assert list(at.dataframe[0].value["name"]) == ["movies-v1", "other"]


# -- Ask page (against the planned kqa.api.ask; faked here) -------------------------------------


@dataclass
class FakeAnswer:
    name: str
    score: float
    evidence: list[list[dict[str, str]]] = field(default_factory=list)
    modalities: dict[str, float] = field(default_factory=dict)


@dataclass
class FakeResult:
    answers: list[FakeAnswer]
    confidence: float
    message: str | None = None


def hand_made_result() -> FakeResult:
    t = lambda s, r, o: {"subject": s, "relation": r, "object": o}
    return FakeResult(
        answers=[
            FakeAnswer("Sigourney Weaver", 0.82,
                       [[t("Alien", "starred actors", "Sigourney Weaver")]],
                       {"text": 0.5, "graph": 0.3, "image": 0.2}),
            FakeAnswer("Harrison Ford", 0.11,
                       [[t("Alien", "directed by", "Ridley Scott"),
                         t("Blade Runner", "directed by", "Ridley Scott"),
                         t("Blade Runner", "starred actors", "Harrison Ford")]],
                       {"text": 0.6, "graph": 0.4}),
        ],
        confidence=0.74, message="Low confidence: check the evidence.")


def test_ask_page_says_not_available_without_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(kqa.api, "ask", raising=False)
    kqa.load_kg(tinykg.MOVIES_TSV, "movies")
    at = open_app("ask")
    no_traceback(at)
    assert any("not available yet" in i for i in texts(at.info))
    assert at.button(key="ask_go").disabled


def test_ask_page_shows_answers_evidence_and_history(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []

    def fake_ask(kg_name: str, question: str, image: Any = None, model: Any = None) -> FakeResult:
        calls.append({"kg": kg_name, "question": question, "image": image, "model": model})
        return hand_made_result()

    monkeypatch.setattr(kqa.api, "ask", fake_ask, raising=False)
    monkeypatch.setattr(kqa.api, "list_models", lambda: MODELS, raising=False)
    kqa.load_kg(tinykg.MOVIES_TSV, "movies")
    at = open_app("ask")
    no_traceback(at)
    assert at.selectbox(key="ask_model").options == ["default model for this KG",
                                                     "movies-v1 (minilm, gated)"]
    png = tinykg.poster_png(tmp_path / "poster.png").read_bytes()
    at.file_uploader(key="ask_image").set_value(("poster.png", png, "image/png")).run()
    assert at.image and at.image[0].captions == ["poster.png"], "the image is previewed"
    at.selectbox(key="ask_model").set_value("/models/movies-v1")
    at.text_input(key="question").set_value("who starred in alien?")
    at.button(key="ask_go").click().run()
    no_traceback(at)
    assert calls == [{"kg": "movies", "question": "who starred in alien?", "image": png,
                      "model": "/models/movies-v1"}]
    assert at.subheader[0].value == "Sigourney Weaver"
    assert texts(at.warning) == ["Low confidence: check the evidence."]
    assert {m.label: m.value for m in at.metric}["confidence"] == "74%"
    assert list(at.dataframe[0].value["answer"]) == ["Sigourney Weaver", "Harrison Ford"]
    (dot,) = graphviz_sources(at)
    assert '"Alien" -> "Sigourney Weaver"' in dot
    evidence = at.dataframe[1].value
    assert len(evidence) == 4 and set(evidence["answer"]) == {"Sigourney Weaver", "Harrison Ford"}
    assert at.get("vega_lite_chart"), "modality bar chart"
    # a second question: the history lists both, newest first
    at.text_input(key="question").set_value("who directed alien?")
    at.button(key="ask_go").click().run()
    history = [e for e in at.expander if e.label.startswith("This session's questions")]
    assert history and "(2)" in history[0].label
    assert list(history[0].dataframe[0].value["question"]) == ["who directed alien?",
                                                               "who starred in alien?"]

    # a refusal from the model is a message, and the earlier answer stays
    def refuse(*_a: Any, **_k: Any) -> FakeResult:
        raise KqaError("no trained model for KG 'movies': run kqa train")

    monkeypatch.setattr(kqa.api, "ask", refuse)
    at.text_input(key="question").set_value("and now?")
    at.button(key="ask_go").click().run()
    no_traceback(at)
    assert texts(at.error) == ["no trained model for KG 'movies': run kqa train"]
    assert at.subheader[0].value == "Sigourney Weaver"


# -- kqa.ui helpers -----------------------------------------------------------------------------


def dot_edges(dot: str) -> list[tuple[str, str, str]]:
    quoted = r'"((?:[^"\\]|\\.)*)"'
    return re.findall(rf"^\s*{quoted} -> {quoted} \[label={quoted}\]", dot, flags=re.MULTILINE)


def node_attrs(dot: str, name: str) -> str:
    match = re.search(rf'^\s*"{re.escape(name)}" \[(.*)\];$', dot, flags=re.MULTILINE)
    assert match, f"no node {name!r} in\n{dot}"
    return match.group(1)


def test_evidence_dot_from_a_hand_made_result() -> None:
    dot = ui.evidence_dot(hand_made_result())
    assert dot.startswith('digraph "evidence" {') and dot.endswith("}")
    assert dot_edges(dot) == [
        ("Alien", "Sigourney Weaver", "starred actors"),
        ("Alien", "Ridley Scott", "directed by"),
        ("Blade Runner", "Ridley Scott", "directed by"),
        ("Blade Runner", "Harrison Ford", "starred actors"),
    ]
    assert ui.ANSWER in node_attrs(dot, "Sigourney Weaver")
    assert ui.ANSWER in node_attrs(dot, "Harrison Ford")
    assert ui.TOPIC in node_attrs(dot, "Alien")  # where the paths start
    assert ui.TOPIC not in node_attrs(dot, "Ridley Scott")
    assert "more evidence" not in dot


def test_evidence_dot_accepts_objects_tuples_and_caps_edges() -> None:
    @dataclass
    class Triple:
        subject: str
        relation: str
        object: str

    many = [[Triple(f"e{i}", "r", f"e{i + 1}")] for i in range(80)]
    result = FakeResult([FakeAnswer("e80", 1.0, many),
                         FakeAnswer('Say "hi"\\', 0.5, [[("a", "quote", 'Say "hi"\\')]])], 0.9)
    dot = ui.evidence_dot(result, max_edges=60)
    assert len(dot_edges(dot)) == 60
    assert "+21 more evidence triples" in dot
    assert '"Say \\"hi\\"\\\\"' in dot  # quotes and backslashes escaped
    empty = ui.evidence_dot(FakeResult([], 0.0))
    assert dot_edges(empty) == []


def test_evidence_and_answer_rows() -> None:
    result = hand_made_result()
    assert ui.answer_rows(result)[0] == {"rank": 1, "answer": "Sigourney Weaver", "score": 0.82,
                                         "evidence paths": 1}
    rows = ui.evidence_rows(result)
    assert rows[1] == {"answer": "Harrison Ford", "path": 1, "subject": "Alien",
                       "relation": "directed by", "object": "Ridley Scott"}
    shares = ui.modality_rows(result)
    assert {"answer": "Sigourney Weaver", "modality": "image", "share": 0.2} in shares
    # kqa.answer.AnswerResult keeps one modality split for the whole result
    whole = FakeResult([FakeAnswer("Alien", 0.9)], 0.9)
    whole.modalities = {"text": 0.7, "image": 0.3}  # type: ignore[attr-defined]
    assert ui.modality_rows(whole) == [
        {"answer": ui.ALL_ANSWERS, "modality": "text", "share": 0.7},
        {"answer": ui.ALL_ANSWERS, "modality": "image", "share": 0.3}]
    entry = ui.history_entry("movies", "q?", result, None, "x.png")
    assert entry["top answer"] == "Sigourney Weaver" and entry["confidence"] == 0.74


def test_neighbourhood_dot_is_capped() -> None:
    facts = [{"subject": "Hub", "relation": "r", "relation_name": "links to", "object": f"n{i}"}
             for i in range(55)]
    dot = ui.neighbourhood_dot({"name": "Hub", "facts": facts, "degree": 60})
    assert len(dot_edges(dot)) == 40
    assert "+20 more facts" in dot
    assert ui.CENTRE in node_attrs(dot, "Hub")
    long = ui.neighbourhood_dot({"name": "X", "degree": 1, "facts": [
        {"subject": "X", "relation": "says", "object": "a\nvery " + "long " * 30}]})
    assert "\n" not in dot_edges(long)[0][1] and "…" in long


def test_search_entities() -> None:
    kqa.load_kg(tinykg.MOVIES_TSV, "movies")
    graph = kqa.open_kg("movies").graph
    best = [h.name for h in ui.search_entities(graph, "")]
    assert best[:3] == ["Alien", "Blade Runner", "Ridley Scott"]  # 3 facts each, then by name
    hits = ui.search_entities(graph, "ALIEN")
    assert hits[0].name == "Alien" and hits[0].score == 100.0 and hits[0].ref == "Alien"
    assert ui.search_entities(graph, "harison ford")[0].name == "Harrison Ford"
    assert len(ui.search_entities(graph, "a", limit=3)) == 3


def test_small_helpers(tmp_path: Path) -> None:
    class L:
        extensions = (".tsv", ".TTL")

    assert ui.accepted_extensions({"a": L()}) == [".tsv", ".ttl"]
    saved = ui.save_upload("../../etc/kb.tsv", b"x", tmp_path)
    assert saved == tmp_path / "kb.tsv" and saved.read_bytes() == b"x"
    message = f"{tmp_path}/kb.tsv:3 [object]: bad"
    assert ui.clean_message(message, tmp_path) == "kb.tsv:3 [object]: bad"
    assert ui.load_progress("triples", 50, 200) == (0.25, "triples: 50 / 200")
    assert ui.load_progress("graph", 0, 1)[1] == "graph…"
    assert ui.default_kg(["a", "countries"]) == "countries" and ui.default_kg(["b", "a"]) == "b"
    assert ui.default_kg([]) is None
    assert ui.describe_error(KqaError("plain")) == ("plain", None)
    message, detail = ui.describe_error(ValueError("bad value\nmore"))
    assert message == "Something went wrong: ValueError: bad value" and "ValueError" in detail
    rows = ui.model_rows(MODELS)
    assert list(rows[0])[:5] == ["name", "kg", "encoder", "fusion", "path"]
    assert rows[0]["metrics"] == "{'hits@1': 0.9}"
    assert ui.model_choice(MODELS[0]) == ("/models/movies-v1", "movies-v1 (minilm, gated)")
