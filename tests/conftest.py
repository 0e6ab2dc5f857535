"""Shared fixtures: an isolated KQA_HOME for every test, and the two store back ends."""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest

import kqa.graph
import kqa.plugins
import kqa.store

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
METAQA = SHARED / "data" / "metaqa"
PG_URL = os.environ.get("KQA_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _reset_caches() -> None:
    kqa.store.dispose_engines()
    kqa.graph.clear_memory()


@pytest.fixture(autouse=True)
def kqa_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own KQA_HOME (SQLite store, caches, models), never ~/.kqa."""
    home = tmp_path / "kqa_home"
    monkeypatch.setenv("KQA_HOME", str(home))
    monkeypatch.delenv("KQA_DATABASE_URL", raising=False)
    monkeypatch.delenv("KQA_PLUGINS", raising=False)
    monkeypatch.delenv("KQA_PLUGINS_BLOCK", raising=False)
    _reset_caches()
    yield home
    _reset_caches()


def _pg_reachable() -> str | None:
    """None when the PostgreSQL test server answers, else the reason it does not."""
    try:
        import sqlalchemy

        engine = sqlalchemy.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.exec_driver_sql("select 1")
        engine.dispose()
        return None
    except Exception as exc:  # any failure means: skip PostgreSQL, saying why
        return f"PostgreSQL at {PG_URL} unreachable: {type(exc).__name__}: {exc}".splitlines()[0]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, kqa_home: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run a store test against SQLite and against the real PostgreSQL server (in a fresh
    schema dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{kqa_home / 'kqa.db'}"
        return
    reason = _pg_reachable()
    if reason:
        pytest.skip(reason)
    import sqlalchemy

    schema = f"kqa_test_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    monkeypatch.setenv("KQA_DATABASE_URL", url)
    try:
        yield url
    finally:
        _reset_caches()
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture
def metaqa() -> Path:
    """The shared MetaQA folder; tests needing it skip with the reason when it is absent."""
    if not (METAQA / "kb.txt").is_file():
        pytest.skip(f"MetaQA data not found at {METAQA} (../shared/data/metaqa beside the repo)")
    return METAQA


@contextmanager
def home_at(home: Path) -> Iterator[Path]:
    """KQA_HOME set to ``home`` for a block (module- or session-scoped fixtures, where
    monkeypatch is not available), restored afterwards."""
    old = os.environ.get("KQA_HOME")
    os.environ["KQA_HOME"] = str(home)
    _reset_caches()
    try:
        yield home
    finally:
        if old is None:
            os.environ.pop("KQA_HOME", None)
        else:
            os.environ["KQA_HOME"] = old
        _reset_caches()


@pytest.fixture(scope="session")
def trained_films(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The synthetic films KG (tests/films_kg.py) with a model trained on its questions, in a
    KQA_HOME of its own; trained once per test session (about ten seconds)."""
    import torch

    import films_kg
    import kqa

    home = tmp_path_factory.mktemp("films-home")
    with home_at(home):
        paths = films_kg.build(home / "data")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a model this small trains fastest on one thread
        try:
            kqa.load_kg(paths["kb"], "films")
            kqa.build_index("films")
            report = kqa.train("films", [paths["train"]], epochs=15, seed=0, patience=4)
        finally:
            torch.set_num_threads(threads)
        yield {**paths, "home": home, "model": Path(report.model_dir), "report": report}


@pytest.fixture
def films_home(trained_films: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Use the trained films KQA_HOME in this test."""
    monkeypatch.setenv("KQA_HOME", str(trained_films["home"]))
    _reset_caches()
    return trained_films
