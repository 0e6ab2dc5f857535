"""kqa's web UI: ``streamlit run app.py`` (``make app``).

Thin on purpose: every page calls :mod:`kqa.api` for the work and :mod:`kqa.ui` for turning
results into tables and pictures. Pages: Knowledge (load and browse KGs), Ask (questions with
an optional image), Models (train, evaluate) and Plugins.

A page can be opened directly at its URL (``/knowledge``, ``/ask``, ``/models``,
``/plugins``) or with ``?page=<url path>``, which makes that page the start page — this is how
tests pick a page (``AppTest.query_params["page"] = "plugins"``).
"""

from __future__ import annotations

import inspect
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

import kqa
from kqa import api, ui
from kqa.errors import KqaError
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


def api_has(name: str) -> bool:
    return callable(getattr(api, name, None))


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


def _models() -> list[dict[str, Any]]:
    """Trained models, once ``kqa.api.list_models`` exists (read fresh: it is cheap, and a
    model trained from the CLI shows up without a restart)."""
    return list(api.list_models()) if api_has("list_models") else []


def ask() -> None:
    st.title("Ask")
    available = api_has("ask")
    if not available:
        st.info("Question answering is not available yet: the answer model is still being built.")
    kgs = [k.name for k in api.list_kgs()]
    if not kgs:
        st.info("Load a knowledge graph on the Knowledge page first.")
        return
    left, right = st.columns([2, 1])
    with left:
        kg_name = kg_select("Knowledge graph", "ask_kg", kgs)
    with right:
        models = [m for m in _models() if m.get("kg") in (None, kg_name)]
        choices = {"": "default model for this KG"}
        for m in models:
            value, label = ui.model_choice(m)
            choices[value] = label
        model = st.selectbox("Model", list(choices), format_func=choices.get, key="ask_model")
    image = st.file_uploader("Image (optional)", type=["png", "jpg", "jpeg", "webp", "gif", "bmp"],
                             key="ask_image")
    if image is not None:
        st.image(image.getvalue(), caption=image.name, width=240)
    with st.form("ask_form", border=False):
        question = st.text_input("Question", key="question",
                                 placeholder="e.g. Which country has this flag?")
        asked = st.form_submit_button("Ask", type="primary", disabled=not available, key="ask_go")
    history: list[dict[str, Any]] = st.session_state.setdefault(ASK_HISTORY, [])
    if asked and available:
        if not (question or "").strip():
            st.warning("Type a question first.")
        else:
            try:
                with st.spinner("Thinking…"):
                    result = api.ask(kg_name, question.strip(),
                                     image=image.getvalue() if image is not None else None,
                                     model=model or None)
            except KqaError as exc:  # no model yet, a bad image…: say so, keep the history
                st.error(str(exc))
            else:
                history.append(ui.history_entry(kg_name, question.strip(), result, model or None,
                                                image.name if image is not None else None))
    if history:
        show_answer(history[-1]["result"])
        if len(history) > 1:
            with st.expander(f"This session's questions ({len(history)})"):
                rows = [{k: v for k, v in h.items() if k != "result"} for h in reversed(history)]
                st.dataframe(rows, hide_index=True, width="stretch")


def show_answer(result: Any) -> None:
    rows = ui.answer_rows(result)
    message = getattr(result, "message", None)
    confidence = getattr(result, "confidence", None)
    if not rows:
        st.warning(message or "No answer found.")
        return
    if message:
        st.warning(message)
    top, conf = st.columns([3, 1])
    top.subheader(rows[0]["answer"])
    if confidence is not None:
        conf.metric("confidence", f"{float(confidence):.0%}")
    st.dataframe(rows, hide_index=True, width="stretch")
    evidence = ui.evidence_rows(result)
    if evidence:
        st.markdown("**Evidence**")
        st.graphviz_chart(ui.evidence_dot(result))
        st.dataframe(evidence, hide_index=True, width="stretch")
    modalities = ui.modality_rows(result)
    if modalities:
        st.markdown("**What each modality contributed**")
        st.bar_chart(modalities, x="answer", y="share", color="modality", stack=True,
                     horizontal=True)


# -- Models -------------------------------------------------------------------------------------


def models() -> None:
    st.title("Models")
    if not api_has("list_models"):
        st.info("Trained models are not available yet: the answer model is still being built.")
    else:
        rows = ui.model_rows(_models())
        if rows:
            st.dataframe(rows, hide_index=True, width="stretch")
        else:
            st.info("No trained models yet.")
    kgs = [k.name for k in api.list_kgs()]
    train_col, eval_col = st.columns(2)
    with train_col:
        st.subheader("Train")
        if not api_has("train"):
            st.info("Training from the web UI is not available yet.")
        elif kgs:
            kg_name = kg_select("Knowledge graph", "train_kg", kgs)
            if st.button("Train a model", key="train_go"):
                bar = st.progress(0.0, text="starting…")
                result = call_with_progress(api.train, bar, kg_name)
                st.success(f"Trained: {result}")
    with eval_col:
        st.subheader("Evaluate")
        if not api_has("evaluate"):
            st.info("Evaluation from the web UI is not available yet.")
        elif kgs:
            kg_name = kg_select("Knowledge graph", "eval_kg", kgs)
            if st.button("Evaluate", key="eval_go"):
                bar = st.progress(0.0, text="starting…")
                result = call_with_progress(api.evaluate, bar, kg_name)
                st.write(result)


def call_with_progress(fn: Callable[..., Any], bar: Any, *args: Any) -> Any:
    """Call ``fn(*args)``, passing a progress callback when ``fn`` takes one."""

    def progress(stage: str, done: int, total: int) -> None:
        value, text = ui.load_progress(stage, done, total)
        bar.progress(value, text=text)

    kwargs = {"progress": progress} if "progress" in inspect.signature(fn).parameters else {}
    result = fn(*args, **kwargs)
    bar.progress(1.0, text="done")
    return result


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
    if not api_has("list_models"):
        st.info("no models yet")
        return
    rows = ui.model_rows(_models())
    if rows:
        keep = ("name", "kg", "encoder", "text_encoder", "image_encoder", "fusion")
        st.table([{k: r[k] for k in keep if k in r} for r in rows], hide_index=True,
                 border="horizontal")
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
