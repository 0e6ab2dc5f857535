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
import kqa.graph
import kqa.store
from kqa import ui
from kqa.answer import Answer, AnswerResult
from kqa.errors import KqaError
from kqa.plugins import get_plugins

from helpers import Throwaway

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "app.py"
FIXTURES = Path(__file__).parent / "fixtures" / "ui"



def _fixture_module(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"ui_{name}", FIXTURES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


tinykg = _fixture_module("tinykg")
flagskg = _fixture_module("flagskg")


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




class Exploding:
    @kqa.hookimpl
    def register_loaders(self, register):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")


def test_plugins_page_lists_builtins_throwaway_and_failures() -> None:
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


MODELS = [{"name": "movies-v1", "path": "/models/movies-v1", "kg": "movies", "fusion": "gated",
           "text_encoder": "minilm", "image_encoder": "efficientnet-lite0",
           "metrics": {"val_hits@1": 0.9}, "created": "2026-01-01T00:00:00+00:00", "examples": 10},
          {"name": "other", "path": "/models/other", "kg": "other", "fusion": "concat",
           "text_encoder": "minilm", "image_encoder": None, "metrics": {}, "created": None,
           "examples": 5}]


def test_plugins_page_shows_each_models_encoder_and_fusion(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kqa.api, "list_models", lambda: MODELS)
    at = open_app("plugins")
    no_traceback(at)
    models = table(at, "name", "kg", "text_encoder", "image_encoder")
    assert list(models["fusion"]) == ["gated", "concat"]
    assert list(models["image_encoder"]) == ["efficientnet-lite0", "—"]
    at = open_app("models")
    no_traceback(at)
    listed = at.dataframe[0].value
    assert list(listed["name"]) == ["movies-v1", "other"]
    assert list(listed["val_hits@1"])[0] == 0.9


# -- Ask page with a hand-made kqa.answer.AnswerResult (fast: no model) ----------------------------


def triple(subject: str, relation: str, obj: str) -> dict[str, str]:
    return {"subject": subject, "relation": relation, "object": obj}


def hand_made_result(image: bool = False) -> AnswerResult:
    """What kqa.answer.Answerer.ask returns, made by hand: a 1-hop and a 3-hop answer."""
    return AnswerResult(
        question="who starred in alien?",
        answers=[
            Answer("Sigourney Weaver", 3, 0.82, 1, [[triple("Alien", "starred actors", "Sigourney Weaver")]]),
            Answer("Harrison Ford", 7, 0.11, 3, [[triple("Alien", "directed by", "Ridley Scott"),
                                                  triple("Blade Runner", "directed by", "Ridley Scott"),
                                                  triple("Blade Runner", "starred actors", "Harrison Ford")]]),
        ],
        confidence=0.82,
        topic=[{"name": "Alien", "score": 0.9, "source": "alias", "mention": "alien", "span": [15, 20]}],
        image_topic=[{"name": "Alien", "score": 0.6, "source": "image"}],
        modalities={"image": 0.2 if image else 0.0, "kg": 0.3, "text": 0.5 if image else 0.7},
        topic_from_text=0.9 if image else 1.0,
        relations=[[("starred actors", 0.8), ("directed by", 0.1)], [("directed by (inverse)", 0.7)],
                   [("starred actors", 0.6)]],
        hop_probs=[0.05, 0.8, 0.1, 0.05], message="Low confidence: check the evidence.", seconds=0.05)


def test_ask_page_shows_answers_evidence_and_history(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []

    def fake_ask(kg_name: str, question: str, image: Any = None, model: Any = None) -> AnswerResult:
        calls.append({"kg": kg_name, "question": question, "image": image, "model": model})
        return hand_made_result(image is not None)

    monkeypatch.setattr(kqa.api, "ask", fake_ask)
    monkeypatch.setattr(kqa.api, "list_models", lambda: MODELS)
    kqa.load_kg(tinykg.MOVIES_TSV, "movies")
    at = open_app("ask")
    no_traceback(at)
    assert at.selectbox(key="ask_model").options == [
        "movies-v1 (minilm+efficientnet-lite0, gated, val Hits@1 0.90)"]
    png = tinykg.poster_png(tmp_path / "poster.png").read_bytes()
    at.file_uploader(key="ask_image").set_value(("poster.png", png, "image/png")).run()
    assert at.image and at.image[0].captions == ["poster.png"], "the image is previewed"
    at.text_input(key="question").set_value("who starred in alien?")
    at.button(key="ask_go").click().run()
    no_traceback(at)
    assert calls == [{"kg": "movies", "question": "who starred in alien?", "image": png,
                      "model": "/models/movies-v1"}]
    assert at.subheader[0].value == "Sigourney Weaver"
    assert texts(at.warning) == ["Low confidence: check the evidence."]
    assert {m.label: m.value for m in at.metric}["confidence"] == "82%"
    answers = table(at, "rank", "answer", "score", "hops")
    assert list(answers["answer"]) == ["Sigourney Weaver", "Harrison Ford"]
    assert list(answers["hops"]) == [1, 3]
    (dot,) = graphviz_sources(at)
    assert ("Alien", "Sigourney Weaver", "starred actors") in dot_edges(dot)
    assert '"__image__" -> "Alien"' not in dot  # the words named Alien: the question is the source
    assert '"__question__" -> "Alien"' in dot
    evidence = table(at, "answer", "path", "hop")
    assert len(evidence) == 4 and list(evidence["hop"]) == [1, 1, 2, 3]
    topics = table(at, "entity", "from")
    assert list(topics["from"]) == ["question", "image"]  # an image was given
    relations = table(at, "hop", "probability", "relations")
    assert relations["relations"][1] == "starred actors (80%), directed by (10%)"
    assert any("from the image 10%" in c.value for c in at.caption), "the text/image gate"
    assert at.get("vega_lite_chart") or at.get("arrow_vega_lite_chart"), "modality bar chart"
    # a second question: the history lists both, newest first
    at.text_input(key="question").set_value("who directed alien?")
    at.button(key="ask_go").click().run()
    history = [e for e in at.expander if e.label.startswith("This session's questions")]
    assert history and "(2)" in history[0].label
    assert list(history[0].dataframe[0].value["question"]) == ["who directed alien?",
                                                               "who starred in alien?"]

    # a refusal from the model is a message, and the earlier answer stays
    def refuse(*_a: Any, **_k: Any) -> AnswerResult:
        raise KqaError("KG 'movies' has different relations than when the model was trained")

    monkeypatch.setattr(kqa.api, "ask", refuse)
    at.text_input(key="question").set_value("and now?")
    at.button(key="ask_go").click().run()
    no_traceback(at)
    assert texts(at.error) == ["KG 'movies' has different relations than when the model was trained"]
    assert at.subheader[0].value == "Sigourney Weaver"


def test_ask_page_refuses_a_bad_image(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kqa.api, "list_models", lambda: MODELS)
    monkeypatch.setattr(kqa.api, "ask", lambda *a, **k: hand_made_result(k.get("image") is not None))
    kqa.load_kg(tinykg.MOVIES_TSV, "movies")
    at = open_app("ask")
    at.file_uploader(key="ask_image").set_value(("fake.png", b"not a png", "image/png")).run()
    no_traceback(at)
    assert any("fake.png: not an image" in e for e in texts(at.error))
    at.text_input(key="question").set_value("who starred in alien?")
    at.button(key="ask_go").click().run()
    no_traceback(at)
    assert at.subheader[0].value == "Sigourney Weaver"  # asked in words only
    assert list(table(at, "entity", "from")["from"]) == ["question"]


def test_ask_page_without_a_model_says_how_to_train() -> None:
    kqa.load_kg(tinykg.MOVIES_TSV, "movies")
    at = open_app("ask")
    no_traceback(at)
    info = " ".join(texts(at.info))
    assert "No trained model for KG 'movies'" in info and "Models" in info
    assert "kqa train --kg movies --generated" in info and "--questions FILE" in info
    assert not at.button  # nothing to ask with
    at = open_app("models")
    no_traceback(at)
    assert "No trained models yet" in " ".join(texts(at.info))
    assert at.button(key="train_go")


# -- a real tiny trained model (films KG), shared by the tests below -------------------------------


@pytest.fixture
def films(films_home: dict[str, Any]) -> dict[str, Any]:
    """The films KG and a model trained on its questions (conftest's trained_films)."""
    return films_home


def a_directed_film(films: dict[str, Any]) -> tuple[str, str]:
    """(film, its director) from the films KG."""
    kb = [line.split("\t") for line in films["kb"].read_text(encoding="utf-8").splitlines()]
    film, _rel, director = next(t for t in kb if t[1] == "directed_by")
    return film, director


@pytest.mark.slow
def test_ask_page_with_a_real_model(films: dict[str, Any]) -> None:
    film, director = a_directed_film(films)
    at = open_app("ask")
    no_traceback(at)
    assert at.selectbox(key="ask_kg").value == "films"
    assert at.selectbox(key="ask_model").value == films["report"].model_dir
    assert at.file_uploader(key="ask_image").disabled  # a text-only model
    at.text_input(key="question").set_value(f"who directed {film}?")
    at.button(key="ask_go").click().run(timeout=60)
    no_traceback(at)
    assert not at.error
    assert at.subheader[0].value == director
    answers = table(at, "rank", "answer", "score", "hops")
    assert answers["answer"][0] == director and answers["hops"][0] == 1
    assert answers["evidence"][0] == f"{film} —directed by→ {director}"
    (dot,) = graphviz_sources(at)
    assert (film, director, "directed by") in dot_edges(dot)
    assert ui.ANSWER in node_attrs(dot, director)
    assert 'color="#3d7cc9"' in node_attrs(dot, film)  # a topic (maybe a low answer too)
    assert f'"__question__" -> {ui.dot_quote(film)}' in dot
    evidence = table(at, "answer", "path", "hop")
    assert (evidence["subject"][0], evidence["object"][0]) == (film, director)
    assert table(at, "entity", "from")["entity"][0] == film
    relations = table(at, "hop", "probability", "relations")
    assert relations["relations"][1].startswith("directed by")
    assert "confidence" in {m.label for m in at.metric}
    # warm: the cached model answers the next question quickly
    at.text_input(key="question").set_value(f"which person directed {film}")
    at.button(key="ask_go").click().run(timeout=30)
    assert at.subheader[0].value == director


@pytest.mark.slow
def test_models_page_lists_and_evaluates(films: dict[str, Any]) -> None:
    at = open_app("models")
    no_traceback(at)
    listed = table(at, "name", "kg", "fusion").set_index("name")
    assert listed.loc["films", "kg"] == "films" and listed.loc["films", "text_encoder"] == "minilm"
    assert 0.0 <= listed.loc["films", "val_hits@1"] <= 1.0
    curves = [e for e in at.expander if e.label == "Training curves: films"]
    assert curves
    assert "films (films)" in [c for image in at.image for c in image.captions], "curves.png"
    at.selectbox(key="eval_kg").set_value("films").run()
    test_file = films["test"]
    at.file_uploader(key="eval_files").set_value(
        [("held_out.txt", test_file.read_bytes(), "text/plain")]).run()
    at.button(key="eval_go").click().run(timeout=60)
    no_traceback(at)
    assert not at.error
    metrics = {m.label: m.value for m in at.metric}
    questions = len(test_file.read_text(encoding="utf-8").splitlines())
    assert metrics["questions"] == f"{questions:,}"
    assert float(metrics["Hits@1"]) > 0.3  # far above chance among hundreds of entities
    per_file = table(at, "file", "questions", "Hits@1", "MRR")
    assert list(per_file["file"]) == ["held_out.txt", "all"]
    # linking the topic entities from the words instead of the brackets
    at.checkbox(key="eval_link").check().run()
    at.button(key="eval_go").click().run(timeout=60)
    no_traceback(at)
    assert "linked from the words" in " ".join(c.value for c in at.caption)


@pytest.mark.slow
def test_train_from_the_ui_shows_curves(films: dict[str, Any]) -> None:
    lines = films["train"].read_text(encoding="utf-8").splitlines()[:40]
    at = open_app("models")
    at.selectbox(key="train_kg").set_value("films")
    at.file_uploader(key="train_files").set_value(
        [("few.txt", ("\n".join(lines) + "\n").encode(), "text/plain")])
    at.number_input(key="train_epochs").set_value(1)
    at.selectbox(key="train_fusion").set_value("concat")
    at.text_input(key="train_name").set_value("films-ui")
    at.button(key="train_go").click().run(timeout=120)
    no_traceback(at)
    assert not at.error, texts(at.error)
    summary = " ".join(texts(at.success))
    assert "Trained films-ui: 40 questions" in summary and "1 epoch " in summary
    assert at.get("vega_lite_chart") or at.get("arrow_vega_lite_chart"), "the training curves"
    listed = table(at, "name", "kg", "fusion").set_index("name")
    assert listed.loc["films-ui", "fusion"] == "concat"
    assert (Path(films["home"]) / "models" / "films-ui" / "curves.png").is_file()
    # the same name again is refused unless replacing is ticked
    at.button(key="train_go").click().run(timeout=60)
    assert any("A model named 'films-ui' exists" in e for e in texts(at.error))


# -- kqa.ui helpers -----------------------------------------------------------------------------


def dot_edges(dot: str) -> list[tuple[str, str, str]]:
    """(subject, object, label) of every entity → entity edge (an edge drawn ``dir=back``,
    tail and head swapped for the layout, is read back as the fact it shows)."""
    quoted = r'"((?:[^"\\]|\\.)*)"'
    edges = []
    for tail, head, label, rest in re.findall(
            rf"^\s*{quoted} -> {quoted} \[label={quoted}(.*)\];$", dot, flags=re.MULTILINE):
        if not tail.startswith("__"):
            edges.append((head, tail, label) if "dir=back" in rest else (tail, head, label))
    return edges


def node_attrs(dot: str, name: str) -> str:
    match = re.search(rf'^\s*"{re.escape(name)}" \[(.*)\];$', dot, flags=re.MULTILINE)
    assert match, f"no node {name!r} in\n{dot}"
    return match.group(1)


def edge_attrs(dot: str, subject: str, obj: str) -> str:
    match = re.search(rf'^\s*"{re.escape(subject)}" -> "{re.escape(obj)}" \[(.*)\];$', dot,
                      flags=re.MULTILINE)
    assert match, f"no edge {subject!r} -> {obj!r} in\n{dot}"
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
    assert 'xlabel="1 hop"' in node_attrs(dot, "Sigourney Weaver")
    assert ui.ANSWER in node_attrs(dot, "Harrison Ford")
    assert 'xlabel="3 hops"' in node_attrs(dot, "Harrison Ford")
    assert ui.TOPIC in node_attrs(dot, "Alien")  # where the paths start
    assert ui.TOPIC not in node_attrs(dot, "Ridley Scott")
    # the hops are coloured: the first step of each path, the second, the third
    assert ui.hop_colour(1) in edge_attrs(dot, "Alien", "Ridley Scott")
    # the second step walks "Blade Runner —directed by→ Ridley Scott" backwards: drawn from
    # Ridley Scott (where the path is) with the arrow still pointing at him
    assert ui.hop_colour(2) in edge_attrs(dot, "Ridley Scott", "Blade Runner")
    assert "dir=back" in edge_attrs(dot, "Ridley Scott", "Blade Runner")
    assert "dir=back" not in edge_attrs(dot, "Alien", "Ridley Scott")
    assert ui.hop_colour(3) in edge_attrs(dot, "Blade Runner", "Harrison Ford")
    # the topic came from the question's words ("alien"); no image was given
    assert 'label="mentions “alien”"' in edge_attrs(dot, ui.QUESTION_NODE, "Alien")
    assert ui.IMAGE_NODE not in dot
    assert "more evidence" not in dot


def zero_hop_result() -> AnswerResult:
    """Shaped like a real answer to "which country is this" about a flag: every answer a topic
    entity itself (hop 0, evidence ``[[]]``) recognised in the image, plus a 1-hop one."""
    return AnswerResult(
        "which country is this",
        [Answer("Land C", 4, 0.20, 0, [[]]), Answer("Land D", 6, 0.18, 0, [[]]),
         Answer("City C", 5, 0.05, 1, [[triple("Land C", "capital", "City C")]])],
        0.20, [], [{"name": "Land C", "score": 0.28, "source": "image"},
                   {"name": "Land D", "score": 0.26, "source": "image"},
                   {"name": "Land A", "score": 0.25, "source": "image"}],
        {"image": 0.61, "kg": 0.04, "text": 0.35}, 0.0,
        [[("capital", 0.87), ("capital (inverse)", 0.07), ("borders", 0.04)]], [0.71, 0.21],
        "Low confidence (0.20): the question or image may not be about anything in this KG.", 0.8)


def test_evidence_dot_with_answers_that_are_the_topic_itself() -> None:
    result = zero_hop_result()
    dot = ui.evidence_dot(result)
    assert dot_edges(dot) == [("Land C", "City C", "capital")]
    assert ui.ANSWER_TOPIC in node_attrs(dot, "Land C")  # an answer and where a path starts
    assert 'xlabel="topic itself"' in node_attrs(dot, "Land D")
    assert 'label="shows (28%)"' in edge_attrs(dot, ui.IMAGE_NODE, "Land C")
    assert 'label="shows (26%)"' in edge_attrs(dot, ui.IMAGE_NODE, "Land D")
    assert '"Land A"' not in dot  # matched by the image, but no answer starts there
    assert ui.QUESTION_NODE not in dot  # nothing was linked in the words
    rows = ui.answer_rows(result)
    assert [r["hops"] for r in rows] == [0, 0, 1]
    assert rows[0]["evidence"] == "a topic entity itself"
    assert rows[2]["evidence"] == "Land C —capital→ City C"
    assert ui.evidence_rows(result) == [{"answer": "City C", "path": 1, "hop": 1, "subject": "Land C",
                                        "relation": "capital", "object": "City C"}]
    assert [r["from"] for r in ui.topic_rows(result)] == ["image"] * 3
    assert ui.topic_rows(result, image=False) == []
    result.nothing_shown = 0.21  # how likely the picture shows none of the known entities
    assert ui.topic_rows(result)[-1] == {"entity": "none of these", "from": "image", "score": 0.21,
                                         "how": "no entity the model knows a picture of", "mention": ""}
    assert ui.topic_rows(result, image=False) == []
    result.nothing_shown = None
    assert ui.relation_rows(result) == [
        {"hop": 0, "probability": 0.71, "relations": "none: the answer is a topic entity itself"},
        {"hop": 1, "probability": 0.21, "relations": "capital (87%), capital (inverse) (7%), borders (4%)"}]
    assert ui.gate_text(result) == "Topic taken from the question's words 0% · from the image 100%"
    # without an image the model still reports image-topic candidates: they are not shown
    result.modalities["image"] = 0.0
    assert ui.IMAGE_NODE not in ui.evidence_dot(result)


@dataclass
class FakeAnswer:
    name: str
    score: float
    evidence: list[Any] = field(default_factory=list)
    modalities: dict[str, float] = field(default_factory=dict)


@dataclass
class FakeResult:
    answers: list[FakeAnswer]
    confidence: float
    message: str | None = None


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
                                         "hops": 1,
                                         "evidence": "Alien —starred actors→ Sigourney Weaver"}
    rows = ui.evidence_rows(result)
    assert rows[1] == {"answer": "Harrison Ford", "path": 1, "hop": 1, "subject": "Alien",
                       "relation": "directed by", "object": "Ridley Scott"}
    # kqa.answer.AnswerResult keeps one modality split for the whole result
    assert ui.modality_rows(result) == [
        {"answer": ui.ALL_ANSWERS, "modality": "image", "share": 0.0},
        {"answer": ui.ALL_ANSWERS, "modality": "kg", "share": 0.3},
        {"answer": ui.ALL_ANSWERS, "modality": "text", "share": 0.7}]
    per_answer = FakeResult([FakeAnswer("Alien", 0.9, [], {"text": 0.5, "image": 0.5})], 0.9)
    assert {"answer": "Alien", "modality": "image", "share": 0.5} in ui.modality_rows(per_answer)
    entry = ui.history_entry("movies", "q?", result, None, "x.png")
    assert entry["top answer"] == "Sigourney Weaver" and entry["confidence"] == 0.82


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
    assert list(rows[0]) == ["name", "kg", "fusion", "text_encoder", "image_encoder", "val_hits@1",
                             "examples", "created", "path"]
    assert rows[0]["val_hits@1"] == 0.9 and "val_hits@1" not in rows[1]
    assert ui.model_choice(MODELS[1]) == ("/models/other", "other (minilm, concat)")
    assert [m["name"] for m in ui.models_for_kg(MODELS, "movies")] == ["movies-v1"]
    assert ui.check_model_name(" films-2 ") == "films-2"
    for bad in ("", "../x", "a/b", ".hidden"):
        with pytest.raises(KqaError, match="not usable"):
            ui.check_model_name(bad)
    history = [{"epoch": 1, "seconds": 1.0, "train_hits@1": 0.2, "loss_total": 3.0,
                "loss_answer": 2.5, "val_hits@1": 0.1, "val_mrr": 0.2},
               {"epoch": 2, "seconds": 2.0, "train_hits@1": 0.5, "loss_total": 2.0,
                "loss_answer": 1.5}]
    losses, hits = ui.curve_rows(history)
    assert losses == [{"epoch": 1, "total": 3.0, "answer": 2.5},
                      {"epoch": 2, "total": 2.0, "answer": 1.5}]
    assert hits == [{"epoch": 1, "train": 0.2, "val": 0.1}, {"epoch": 2, "train": 0.5}]
