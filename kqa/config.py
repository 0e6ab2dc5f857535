"""Where kqa keeps its state, read from the environment at call time.

Everything lives under ``KQA_HOME`` (default ``~/.kqa``): the SQLite store, the graph caches,
the FAISS indexes and the trained models. Functions rather than module constants, so that a
test (or a Streamlit session) that changes ``KQA_HOME`` is honoured without re-imports.
"""

from __future__ import annotations

import os
from pathlib import Path


def kqa_home() -> Path:
    """The state directory, created on first use."""
    home = Path(os.environ.get("KQA_HOME", "~/.kqa")).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home


def database_url() -> str:
    """``KQA_DATABASE_URL`` when set (e.g. PostgreSQL), else SQLite under ``KQA_HOME``."""
    url = os.environ.get("KQA_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{kqa_home() / 'kqa.db'}"


def kg_dir(kg_name: str) -> Path:
    """Per-KG cache folder (graph view, indexes), keyed by the store's URL as well as the
    name, so two databases with a KG of the same name never share a cache."""
    import hashlib

    tag = hashlib.sha1(database_url().encode()).hexdigest()[:8]
    path = kqa_home() / "kgs" / tag / kg_name
    path.mkdir(parents=True, exist_ok=True)
    return path


def models_dir() -> Path:
    path = kqa_home() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_model_dir(kg_name: str) -> Path:
    """``$KQA_HOME/models/<kg name>``: where ``kqa train`` writes and ``kqa ask`` reads."""
    return models_dir() / kg_name


def env_list(name: str) -> list[str] | None:
    """A comma-separated environment variable as a list, ``None`` when unset or empty."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    return [item.strip() for item in raw.split(",") if item.strip()]
