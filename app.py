"""kqa's web UI: ``streamlit run app.py`` (``make app``).

Thin on purpose: every page calls :mod:`kqa.api` for the work and :mod:`kqa.ui` for turning
results into tables and pictures. Pages: Knowledge (load and browse KGs), Ask (questions with
an optional image), Models (train, evaluate) and Plugins.

A page can be opened directly at its URL (``/knowledge``, ``/ask``, ``/models``,
``/plugins``) or with ``?page=<url path>``, which makes that page the start page — this is how
tests pick a page (``AppTest.query_params["page"] = "plugins"``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

import kqa
from kqa import api, ui
from kqa.config import models_dir
from kqa.errors import KqaError
from kqa.images import open_image
from kqa.plugins import get_plugins

PAGE_PARAM = "page"
ASK_HISTORY = "ask_history"


# -- error handling -----------------------------------------------------------------------------


def show_error(exc: BaseException) -> None:
    """A readable message; for unexpected errors the details sit in a closed expander."""
    message, detail = ui.describe_error(exc)
    st.error(message)
    if detail:
        with st.expander("Details"):
            st.code(detail, language="text")


def guarded(body: Callable[[], None]) -> Callable[[], None]:
    """Run a page body so that errors reach the person as messages, never a traceback page.
    (Streamlit's own rerun/stop signals derive from BaseException and pass through.)"""

    def page() -> None:
        try:
            body()
        except Exception as exc:  # noqa: BLE001 (every error becomes a message on the page)
            show_error(exc)

    page.__name__ = body.__name__
    page.__doc__ = body.__doc__
    return page


def kg_select(label: str, key: str, names: list[str]) -> str | None:
    """A KG select box that starts on ``countries`` when loaded and survives KGs coming and
    going."""
    if not names:
        return None
    if st.session_state.get(key) not in names:
        st.session_state[key] = ui.default_kg(names)
    return st.selectbox(label, names, key=key)


# -- Knowledge ----------------------------------------------------------------------------------


def knowledge() -> None:
    st.title("Knowledge")
    with st.expander("Load a knowledge graph", expanded=not api.list_kgs(),
                     icon=":material/upload:"):
        load_section()
    last = st.session_state.get("last_load")
    if last is not None:
        st.success(ui.summary_text(last))
        for note in last.notes:
            st.caption(note)
    browse_section()


def load_section() -> None:
    loaders = get_plugins().loaders()
    extensions = ui.accepted_extensions(loaders)
    source = st.radio("Source", ["Upload a file", "Path on the server"], horizontal=True,
                      key="load_source")
    upload = path_text = None
    if source == "Upload a file":
        upload = st.file_uploader("Knowledge-graph file", type=extensions or None,
                                  key="load_upload", help="Formats: " + ", ".join(extensions))
    else:
        path_text = st.text_input("File or knowledge-pack folder on the server", key="load_path",
                                  placeholder="knowledge/countries")
    name = st.text_input("KG name", key="load_name",
                         placeholder="defaults to the file name (or the pack's name)")
    mode = st.radio("If a KG with this name exists", ["create", "append", "replace"],
                    horizontal=True, key="load_mode",
                    format_func={"create": "refuse (create new)", "append": "append",
                                 "replace": "replace"}.get)
    with st.expander("Formats"):
        st.dataframe(ui.loader_rows(loaders), hide_index=True)
    if not st.button("Load", type="primary", key="load_go"):
        return
    if upload is None and not (path_text or "").strip():
        st.warning("Choose a file to upload or type a path first.")
        return
    bar = st.progress(0.0, text="starting…")

    def progress(stage: str, done: int, total: int) -> None:
        value, text = ui.load_progress(stage, done, total)
        bar.progress(value, text=text)

    folder = tempfile.mkdtemp(prefix="kqa-upload-") if upload is not None else None
    try:
        if upload is not None:
            path = ui.save_upload(upload.name, upload.getvalue(), folder)
        else:
            path = path_text.strip()
        summary = api.load_kg(path, (name or "").strip() or None, mode=mode, progress=progress)
    except KqaError as exc:
        bar.empty()
        st.session_state.pop("last_load", None)
        message = "Nothing was loaded. " + ui.clean_message(str(exc), folder)
        target = (name or "").strip() or Path(upload.name if upload is not None else path).stem
        if mode == "create" and target in {k.name for k in api.list_kgs()}:
            message += f" (In the web UI: choose 'append' or 'replace' to change KG '{target}'.)"
        st.error(message)
        return
    finally:
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
    bar.progress(1.0, text="done")
    st.session_state["last_load"] = summary
    st.session_state["browse_kg"] = summary.kg  # browse what was just loaded
    st.session_state.pop("entity_query", None)
    new_search()


def new_search() -> None:
    """A new search starts on its best hit, not on the entity picked before."""
    st.session_state.pop("entity_pick", None)


def jump_to_neighbour() -> None:
    target = st.session_state.get("jump")
    if target:
        st.session_state["entity_query"] = target
        new_search()
    st.session_state["jump"] = None


def browse_section() -> None:
    kgs = api.list_kgs()
    st.header("Browse")
    if not kgs:
        st.info("No knowledge graphs yet: load one above.")
        return
    by_name = {k.name: k for k in kgs}
    kg_name = kg_select("Knowledge graph", "browse_kg", list(by_name))
    info = by_name[kg_name]
    cols = st.columns(6)
    counts = [("triples", info.triples), ("entities", info.entities),
              ("relations", info.relations), ("literals", info.literals),
              ("images", info.images), ("version", info.version)]
    for col, (label, value) in zip(cols, counts):
        col.metric(label, f"{value:,}")
    if info.description:
        st.caption(info.description)
    with st.expander("Sources and maintenance"):
        st.write(f"Updated {info.updated_at}")
        for source in info.sources:
            st.text(source)
        confirm = st.checkbox(f"Yes, delete KG '{kg_name}'", key="drop_confirm")
        if st.button("Delete this KG", disabled=not confirm, key="drop_go"):
            api.drop_kg(kg_name)
            st.session_state.pop("drop_confirm", None)
            st.session_state.pop("last_load", None)
            st.rerun()

    kg = api.open_kg(kg_name)
    graph = kg.graph
    search, pick = st.columns(2)
    query = search.text_input("Search entities", key="entity_query", on_change=new_search,
                              placeholder="a name, fuzzy; empty lists the best-connected entities")
    hits = ui.search_entities(graph, query)
    if not hits:
        st.info("No entity matches.")
        return
    labels = {h.node: h for h in hits}
    node = pick.selectbox("Entity", list(labels), format_func=lambda n: labels[n].label,
                          key="entity_pick")
    entity = kg.show(labels[node].ref)
    show_entity(entity)


def show_entity(entity: dict[str, Any]) -> None:
    st.subheader(entity["name"])
    meta = [f"type: {entity['type'] or entity['kind']}", f"key: {entity['key']}",
            f"{entity['degree']:,} facts"]
    if entity["aliases"]:
        meta.append("aliases: " + ", ".join(entity["aliases"]))
    st.caption(" · ".join(meta))
    images = [p for p in entity["images"] if p]
    picture, side = st.columns([3, 1]) if images else (st.container(), None)
    with picture:
        st.graphviz_chart(ui.neighbourhood_dot(entity))
    if side is not None:
        with side:
            for path in images[:4]:
                try:
                    st.image(path, caption=entity["name"], width="stretch")
                except Exception:  # noqa: BLE001 (an unreadable image is not fatal)
                    st.caption(f"image not readable: {path}")
    facts = ui.facts_rows(entity)
    # a static table: readable by screen readers and browser tests, scrolls when long
    st.table(facts, hide_index=True, border="horizontal",
             height="content" if len(facts) <= 15 else 480)
    if entity["neighbours"]:
        st.selectbox("Go to a neighbour", entity["neighbours"], index=None, key="jump",
                     on_change=jump_to_neighbour, placeholder="pick one to browse it")
    if entity["provenance"]:
        with st.expander("Provenance"):
            st.dataframe(entity["provenance"], hide_index=True)


# -- Ask ----------------------------------------------------------------------------------------

IMAGE_TYPES = ["png", "jpg", "jpeg", "webp", "gif", "bmp"]


def ask() -> None:
    st.title("Ask")
    kgs = [k.name for k in api.list_kgs()]
    if not kgs:
        st.info("Load a knowledge graph on the Knowledge page first.")
        return
    left, right = st.columns([2, 1])
    with left:
        kg_name = kg_select("Knowledge graph", "ask_kg", kgs)
    # cheap on every rerun: a glob and a few small JSON files (the model itself is cached by
    # kqa.answer.load_answerer, so only the first question after a start pays for loading it)
    models = ui.models_for_kg(api.list_models(), kg_name, api.resolve_model(kg_name, None))
    if not models:
        st.info(ui.no_model_text(kg_name))
        return
    choices = {value: m for m in models for value, _label in [ui.model_choice(m)]}
    with right:
        if st.session_state.get("ask_model") not in choices:
            st.session_state["ask_model"] = next(iter(choices))  # the KG's default model first
        model = st.selectbox("Model", list(choices), key="ask_model",
                             format_func=lambda v: ui.model_label(choices[v]))
    takes_images = bool(choices[model].get("image_encoder"))
    upload = st.file_uploader("Image (optional)", type=IMAGE_TYPES, key="ask_image",
                              disabled=not takes_images,
                              help=None if takes_images else "this model was trained without images")
    if not takes_images:
        st.caption("This model was trained without images: ask in words.")
    image = upload if takes_images else None
    if image is not None:
        try:
            picture = open_image(image.getvalue(), name=image.name)
        except KqaError as exc:  # not an image, corrupt, too large: say so, ask without it
            st.error(f"{exc}. Upload another picture, or remove it to ask in words only.")
            image = None
        else:
            st.image(picture, caption=image.name, width=240)
    with st.form("ask_form", border=False):
        question = st.text_input("Question", key="question",
                                 placeholder="e.g. Which country has this flag?")
        asked = st.form_submit_button("Ask", type="primary", key="ask_go")
    history: list[dict[str, Any]] = st.session_state.setdefault(ASK_HISTORY, [])
    if asked:
        if not (question or "").strip():
            st.warning("Type a question first" + (" (about the image)." if image else "."))
        else:
            try:
                with st.spinner("Thinking…"):
                    result = api.ask(kg_name, question.strip(),
                                     image=image.getvalue() if image is not None else None,
                                     model=model)
            except KqaError as exc:  # a KG changed since training, a bad image…: keep the history
                st.error(str(exc))
            else:
                entry = ui.history_entry(kg_name, question.strip(), result,
                                         choices[model].get("name"),
                                         image.name if image is not None else None)
                history.append(entry)
    if history:
        last = history[-1]
        show_answer(last["result"], image=last["image"] is not None)
        if len(history) > 1:
            with st.expander(f"This session's questions ({len(history)})"):
                rows = [{k: v for k, v in h.items() if k != "result"} for h in reversed(history)]
                st.dataframe(rows, hide_index=True, width="stretch")


HOP_LEGEND = " · ".join(f":{colour}[hop {hop}]" for hop, colour in
                        enumerate(["blue", "violet", "orange", "green"], start=1))


def show_answer(result: Any, image: bool) -> None:
    rows = ui.answer_rows(result)
    message = getattr(result, "message", None)
    if message:
        st.warning(message)
    if not rows:
        if not message:
            st.warning("No answer found.")
        return
    top, conf, took = st.columns([4, 1, 1])
    top.subheader(rows[0]["answer"])
    hops = rows[0].get("hops")
    if hops is not None:
        top.caption("the topic entity itself" if hops == 0 else
                    f"{hops} hop{'s' if hops != 1 else ''} from the topic")
    conf.metric("confidence", f"{float(result.confidence):.0%}")
    seconds = getattr(result, "seconds", None)
    if seconds:
        took.metric("time", f"{seconds * 1000:.0f} ms")
    st.table(rows, hide_index=True, border="horizontal")

    st.markdown("**Evidence**")
    st.graphviz_chart(ui.evidence_dot(result, image=image))
    st.caption("Topic entities in blue, answers in yellow; edges coloured by hop: " + HOP_LEGEND)
    evidence = ui.evidence_rows(result)
    if evidence:
        st.table(evidence, hide_index=True, border="horizontal",
                 height="content" if len(evidence) <= 15 else 480)
    else:
        st.caption("The answers are topic entities themselves: no triples were followed.")

    topics, relations = st.columns(2)
    with topics:
        st.markdown("**Topic entities**")
        topic_rows = ui.topic_rows(result, image=image)
        if topic_rows:
            st.table(topic_rows, hide_index=True, border="horizontal")
        else:
            st.caption("No entity of the KG was recognised in the question"
                       + (" or the image." if image else "."))
        gate = ui.gate_text(result)
        if gate and image:
            st.caption(gate)
    with relations:
        st.markdown("**Relations followed per hop**")
        st.table(ui.relation_rows(result), hide_index=True, border="horizontal")
    modalities = ui.modality_rows(result)
    if modalities:
        st.markdown("**What each modality contributed**")
        st.altair_chart(modality_chart(modalities), width="stretch",
                        height=50 + 30 * len(modalities))


def modality_chart(rows: list[dict[str, Any]]) -> alt.LayerChart:
    """Each modality's share as a labelled bar ("answer: modality" when the answers carry
    their own shares); no legend to clip, the axis names the bars."""
    data = pd.DataFrame(rows)
    data["label"] = data["share"].map(lambda v: f"{v:.0%}")
    per_answer = data["answer"].nunique() > 1 or data["answer"].iloc[0] != ui.ALL_ANSWERS
    data["bar"] = (data["answer"] + ": " + data["modality"]) if per_answer else data["modality"]
    base = alt.Chart(data).encode(
        y=alt.Y("bar:N", title=None, sort=None, axis=alt.Axis(labelOverlap=False)),
        x=alt.X("share:Q", title="share", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        tooltip=["answer", "modality", alt.Tooltip("share:Q", format=".0%")])
    bars = base.mark_bar(height=18).encode(color=alt.Color("modality:N", legend=None))
    return bars + base.mark_text(align="left", dx=4).encode(text="label:N")


# -- Models -------------------------------------------------------------------------------------


def models() -> None:
    st.title("Models")
    records = api.list_models()
    if records:
        st.dataframe(ui.model_rows(records), hide_index=True, width="stretch")
        for record in records:
            curves = Path(record["path"]) / "curves.png"
            with st.expander(f"Training curves: {record['name']}"):
                if curves.is_file():
                    st.image(str(curves), caption=f"{record['name']} ({record['kg']})")
                else:
                    st.caption("No curves saved for this model.")
    else:
        st.info("No trained models yet: train one below (or with `kqa train --kg NAME`).")
    kgs = [k.name for k in api.list_kgs()]
    if not kgs:
        st.info("Load a knowledge graph on the Knowledge page first, then train a model for it.")
        return
    st.header("Train")
    last = st.session_state.get("last_train")
    if last:
        st.success(last["summary"])
        curve_charts(last["history"])
    train_section(kgs)
    st.header("Evaluate")
    evaluate_section(kgs, records)


def curve_charts(history: list[dict[str, Any]], slots: Any = None) -> None:
    """Loss and Hits@1 per epoch, side by side (into ``slots``: two st.empty() to redraw)."""
    losses, hits = ui.curve_rows(history)
    left, right = slots or st.columns(2)
    if losses and len(losses[0]) > 1:
        left.altair_chart(curve_chart(losses, "loss"), width="stretch")
    if hits and len(hits[0]) > 1:
        right.altair_chart(curve_chart(hits, "Hits@1", (0, 1)), width="stretch")


def curve_chart(rows: list[dict[str, Any]], title: str,
                domain: tuple[float, float] | None = None) -> alt.Chart:
    """Lines with points (a single epoch is still visible), one per series."""
    data = pd.DataFrame(rows).melt("epoch", var_name="series", value_name=title).dropna()
    y = alt.Y(f"{title}:Q", title=title, scale=alt.Scale(domain=list(domain)) if domain else
              alt.Scale(zero=False))
    return alt.Chart(data).mark_line(point=True).encode(
        x=alt.X("epoch:Q", axis=alt.Axis(format="d", tickMinStep=1)),
        y=y, color=alt.Color("series:N", title=None), tooltip=["epoch", "series", title],
    ).properties(height=220)


def save_uploads(uploads: list[Any], folder: str) -> list[Path]:
    """Uploaded files saved under their original names (a clash goes into a subfolder)."""
    paths = []
    for number, upload in enumerate(uploads):
        target = Path(folder)
        if (target / Path(upload.name).name).exists():
            target = target / str(number)
            target.mkdir()
        paths.append(ui.save_upload(upload.name, upload.getvalue(), target))
    return paths


QUESTION_FILE_HELP = ("One question a line: question<TAB>answer1|answer2. The optional third "
                      "column, an image path relative to the file, cannot be resolved for uploaded "
                      "files: only text questions work here (train with images from the CLI: "
                      "`kqa train --kg NAME --questions FILE`).")


def train_section(kgs: list[str]) -> None:
    fusions = get_plugins().fusions()
    with st.form("train_form"):
        kg_name = kg_select("Knowledge graph", "train_kg", kgs)
        uploads = st.file_uploader("Question files", accept_multiple_files=True,
                                   key="train_files", help=QUESTION_FILE_HELP)
        st.caption("Question files: only text questions work for uploads (an image column "
                   "would need the images beside the file).")
        generated = st.checkbox("Questions generated from the KG", key="train_generated",
                                help="Templated questions about each entity's facts (and its "
                                     "pictures, where entities have images).")
        a, b, c, d = st.columns(4)
        names = sorted(fusions)
        fusion = a.selectbox("Fusion", names, key="train_fusion",
                             index=names.index("gated") if "gated" in names else 0,
                             help="\n".join(f"- **{n}**: {getattr(fusions[n], 'description', '')}"
                                            for n in names))
        epochs = b.number_input("Epochs (at most)", 1, 500, 12, key="train_epochs",
                                help="Training stops early when validation Hits@1 stops improving.")
        lam = c.number_input("λ (auxiliary losses)", 0.0, 100.0, 1.0, 0.1, key="train_lam",
                             help="L = L_answer + λ·L_other (mention tagging, image alignment)")
        seed = d.number_input("Seed", 0, 2**31 - 1, 0, key="train_seed")
        name = st.text_input("Model name", key="train_name", placeholder="defaults to the KG name",
                             help="Saved under $KQA_HOME/models/<name>; the KG's name makes it "
                                  "the KG's default model.")
        replace = st.checkbox("Replace a model of the same name", key="train_replace")
        go = st.form_submit_button("Train", type="primary", key="train_go")
    st.caption("Training runs while this page is open: stay on it until it finishes.")
    if not go:
        return
    if not uploads and not generated:
        st.warning("Upload question files or tick 'Questions generated from the KG' first.")
        return
    try:
        name = ui.check_model_name(name or kg_name)
    except KqaError as exc:
        st.error(str(exc))
        return
    out = models_dir() / name
    if (out / "config.json").is_file() and not replace:
        st.error(f"A model named '{name}' exists: tick 'Replace a model of the same name' or "
                 f"choose another name.")
        return
    bar = st.progress(0.0, text="starting…")
    slots = st.columns(2)
    charts = (slots[0].empty(), slots[1].empty())
    history: list[dict[str, Any]] = []

    def progress(stage: str, done: int, total: int) -> None:
        value, text = ui.load_progress(stage, done, total)
        bar.progress(value, text=text)

    def log(record: dict[str, Any]) -> None:
        history.append(dict(record))
        curve_charts(history, charts)

    folder = tempfile.mkdtemp(prefix="kqa-train-")
    try:
        paths = save_uploads(list(uploads or []), folder)
        prepare_indexes(kg_name, progress)
        report = api.train(kg_name, paths, out=out, fusion=fusion, generated=generated,
                           progress=progress, log=log, epochs=int(epochs), lam=float(lam),
                           seed=int(seed))
    except KqaError as exc:
        bar.empty()
        st.error("Nothing was trained. " + ui.clean_message(str(exc), folder))
        return
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    st.session_state["last_train"] = {"summary": ui.train_summary(report),
                                      "history": list(report.history)}
    st.rerun()  # the models table now lists the new model; the curves stay on the page


def prepare_indexes(kg_name: str, progress: Callable[[str, int, int], None]) -> None:
    """Build the KG's missing name (and image) indexes with progress shown; training would
    build them anyway, silently. Existing indexes are reused as they are (their image views)."""
    from kqa.index import open_index

    open_index(kg_name, "entities", progress=progress)
    open_index(kg_name, "relations", progress=progress)
    if api.open_kg(kg_name).info().images:
        open_index(kg_name, "images", progress=progress)


def evaluate_section(kgs: list[str], records: list[dict[str, Any]]) -> None:
    kg_name = kg_select("Knowledge graph", "eval_kg", kgs)
    own = ui.models_for_kg(records, kg_name, api.resolve_model(kg_name, None))
    if not own:
        st.info(ui.no_model_text(kg_name))
        return
    choices = {value: m for m in own for value, _label in [ui.model_choice(m)]}
    if st.session_state.get("eval_model") not in choices:
        st.session_state["eval_model"] = next(iter(choices))
    model = st.selectbox("Model", list(choices), key="eval_model",
                         format_func=lambda v: ui.model_label(choices[v]))
    uploads = st.file_uploader("Question files with answers", accept_multiple_files=True,
                               key="eval_files", help=QUESTION_FILE_HELP)
    link = st.checkbox("Ignore [brackets]: link the topic entities from the words",
                       key="eval_link", help="Without this, [bracketed] entities are given as "
                                             "the topic (gold topics).")
    if not st.button("Evaluate", key="eval_go"):
        result = st.session_state.get("last_eval")
        if result and result["model"] == model:
            show_evaluation(result)
        return
    if not uploads:
        st.warning("Upload a question file first.")
        return
    bar = st.progress(0.0, text="starting…")

    def progress(stage: str, done: int, total: int) -> None:
        value, text = ui.load_progress(stage, done, total)
        bar.progress(value, text=text)

    folder = tempfile.mkdtemp(prefix="kqa-eval-")
    try:
        paths = save_uploads(list(uploads), folder)
        result = api.evaluate(kg_name, paths, model=model, gold_topics=not link,
                              progress=progress)
        rows = ui.eval_rows(result, folder)
    except KqaError as exc:
        bar.empty()
        st.error(ui.clean_message(str(exc), folder))
        return
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    bar.empty()
    st.session_state["last_eval"] = {"model": model, "n": result.n, "hits1": result.hits1,
                                     "mrr": result.mrr, "rows": rows, "linked": link}
    show_evaluation(st.session_state["last_eval"])


def show_evaluation(result: dict[str, Any]) -> None:
    a, b, c = st.columns(3)
    a.metric("questions", f"{result['n']:,}")
    b.metric("Hits@1", f"{result['hits1']:.3f}")
    c.metric("MRR", f"{result['mrr']:.3f}")
    st.table(result["rows"], hide_index=True, border="horizontal")
    st.caption("Topic entities linked from the words." if result["linked"] else
               "Topic entities given by the [brackets].")


# -- Plugins ------------------------------------------------------------------------------------


def plugins() -> None:
    st.title("Plugins")
    manager = get_plugins()
    infos = manager.info()
    st.table(ui.plugin_rows(infos), hide_index=True, border="horizontal")
    for info in infos:
        for error in info.errors:
            st.error(f"Plugin '{info.name}' failed ({error})")
    details = [f for f in manager.failures if f.detail]
    if details:
        with st.expander("Failure details"):
            for failure in details:
                st.markdown(f"**{failure.plugin}** ({failure.stage})")
                st.code(failure.detail, language="text")
    st.subheader("Models: encoders and fusion")
    rows = ui.model_rows(api.list_models())
    if rows:
        keep = ("name", "kg", "text_encoder", "image_encoder", "encoder", "fusion")
        st.table([{k: "—" if r[k] is None else r[k] for k in keep if k in r} for r in rows],
                 hide_index=True, border="horizontal")
    else:
        st.info("no models yet")


# -- navigation ---------------------------------------------------------------------------------

PAGES = [
    (knowledge, "Knowledge", "knowledge", ":material/hub:"),
    (ask, "Ask", "ask", ":material/help:"),
    (models, "Models", "models", ":material/model_training:"),
    (plugins, "Plugins", "plugins", ":material/extension:"),
]


def main() -> None:
    st.set_page_config(page_title="kqa", page_icon=":material/hub:", layout="wide")
    wanted = st.query_params.get(PAGE_PARAM)
    if wanted not in {url for _fn, _title, url, _icon in PAGES}:
        wanted = "knowledge"
    pages = [st.Page(guarded(fn), title=title, url_path=url, icon=icon, default=url == wanted)
             for fn, title, url, icon in PAGES]
    page = st.navigation(pages, position="top")
    page.run()
    st.caption(f"kqa {kqa.__version__}")


main()
