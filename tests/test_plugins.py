"""The plugin system: entry-point discovery, isolation of broken plugins, allow/block lists."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pluggy
import pytest

import kqa
from kqa import hookspecs
from kqa.cli import main
from kqa.errors import LoadError
from kqa.plugins import Plugins, get_plugins, reset_plugins

from helpers import Throwaway

FIXTURE = Path(__file__).parent / "fixtures" / "kqa-plugin-example"
BUILTIN_LOADERS = {"tsv", "csv", "pipe", "delimited"}


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Install the throwaway plugin package with pip into a private folder."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(FIXTURE)], check=True, capture_output=True)
    return target


@pytest.fixture
def with_example(installed_example: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.syspath_prepend(str(installed_example))
    importlib.invalidate_caches()
    reset_plugins()
    yield get_plugins()
    reset_plugins()


def test_builtins_come_from_entry_points() -> None:
    reset_plugins()
    plugins = get_plugins()
    infos = {p.name: p for p in plugins.info()}
    assert infos["delimited"].distribution == "kqa"
    assert infos["delimited"].version == kqa.__version__
    assert "register_loaders" in infos["delimited"].hooks
    assert BUILTIN_LOADERS <= set(infos["delimited"].adds["loaders"])


def test_third_party_plugin_installed_with_pip(with_example: Plugins, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert "shout" in with_example.loaders()
    (tmp_path / "kg.shout").write_text("ALIEN > DIRECTED_BY > RIDLEY SCOTT\n", encoding="utf-8")
    summary = kqa.load_kg(tmp_path / "kg.shout", "loud")
    assert summary.triples_added == 1
    assert kqa.open_kg("loud").show("alien")["facts"][0]["object"] == "ridley scott"
    # The broken plugin is reported, and everything else still works.
    assert main(["plugins", "--json"]) == 0
    import json

    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["example"]["version"] == "0.0.7"
    assert rows["example"]["adds"] == {"loaders": ["shout"]}
    assert "ImportError" in rows["example_broken"]["errors"][0]
    assert BUILTIN_LOADERS <= set(with_example.loaders())


def test_allow_and_block_lists(with_example: Plugins, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KQA_PLUGINS_BLOCK", "example,example_broken")
    reset_plugins()
    names = {p.name for p in get_plugins().info()}
    assert "example" not in names and "example_broken" not in names and "delimited" in names
    monkeypatch.delenv("KQA_PLUGINS_BLOCK")
    monkeypatch.setenv("KQA_PLUGINS", "example")
    reset_plugins()
    assert set(get_plugins().loaders()) == {"shout"}




def test_register_and_unregister_throwaway(tmp_path: Path) -> None:
    plugins = get_plugins()
    plugins.register(Throwaway(), name="throwaway")
    try:
        assert "throwaway" in plugins.loaders()
        (tmp_path / "x.throw").write_text("x", encoding="utf-8")
        with pytest.raises(LoadError, match=r"x\.throw:7 \[subject\]: thrown away"):
            kqa.load_kg(tmp_path / "x.throw", "t")
    finally:
        plugins.unregister("throwaway")
    assert "throwaway" not in plugins.loaders()


def test_plugin_raising_in_hook_is_isolated() -> None:
    class Exploding:
        @kqa.hookimpl
        def register_loaders(self, register):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

    plugins = get_plugins()
    plugins.register(Exploding(), name="exploding")
    try:
        assert BUILTIN_LOADERS <= set(plugins.loaders())
        failure = [f for f in plugins.failures if f.plugin == "exploding"]
        assert failure and failure[0].stage == "register_loaders" and "boom" in failure[0].error
        info = {p.name: p for p in plugins.info()}
        assert "register_loaders: RuntimeError: boom" in info["exploding"].errors
    finally:
        plugins.unregister("exploding")


def test_misspelled_hook_fails_loudly() -> None:
    class Typo:
        @kqa.hookimpl
        def register_loader(self, register):  # type: ignore[no-untyped-def]
            pass

    with pytest.raises(pluggy.PluginValidationError):
        get_plugins().register(Typo(), name="typo")
    assert "typo" not in {p.name for p in get_plugins().info()}


def test_every_hook_is_documented() -> None:
    """Each hookspec has a docstring and a section in docs/plugins.md (the datasette rule)."""
    docs = (Path(__file__).parent.parent / "docs" / "plugins.md").read_text(encoding="utf-8")
    specs = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
             if hasattr(fn, "kqa_spec")]
    assert specs, "no hookspecs found"
    for name in specs:
        assert (getattr(hookspecs, name).__doc__ or "").strip(), f"{name} has no docstring"
        assert f"### {name}(" in docs, f"{name} is not documented in docs/plugins.md"
