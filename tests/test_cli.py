"""The kqa command line: JSON output, readable errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kqa.cli import main

TSV = "Blade Runner\tdirected_by\tRidley Scott\nAlien\tdirected_by\tRidley Scott\n"


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def films(tmp_path: Path) -> Path:
    path = tmp_path / "films.tsv"
    path.write_text(TSV, encoding="utf-8")
    return path


def test_load_list_show_json(films: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["kg", "load", str(films), "--name", "films", "--json"], capsys)
    assert code == 0 and json.loads(out)["triples_added"] == 2
    code, out, _ = run(["kg", "list", "--json"], capsys)
    rows = json.loads(out)
    assert code == 0 and [(r["name"], r["triples"], r["entities"], r["relations"]) for r in rows] == [("films", 2, 3, 1)]
    code, out, _ = run(["kg", "show", "films", "ridley scott", "--json"], capsys)
    shown = json.loads(out)
    assert code == 0 and shown["name"] == "Ridley Scott" and len(shown["facts"]) == 2
    assert set(shown["neighbours"]) == {"Blade Runner", "Alien"}


def test_errors_are_one_readable_line(films: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\tc\nd\te\n", encoding="utf-8")
    code, _, err = run(["kg", "load", str(bad), "--name", "bad"], capsys)
    assert code == 1 and "bad.tsv:2 [object]" in err and "Traceback" not in err
    code, _, err = run(["kg", "show", "nothing", "x"], capsys)
    assert code == 1 and "no KG named 'nothing'" in err
    run(["kg", "load", str(films), "--name", "films"], capsys)
    code, _, err = run(["kg", "load", str(films), "--name", "films"], capsys)
    assert code == 1 and "--append" in err
    code, out, _ = run(["kg", "load", str(films), "--name", "films", "--if-missing"], capsys)
    assert code == 0 and "already loaded" in out
    code, _, err = run(["kg", "load", str(films), "--format", "nope"], capsys)
    assert code == 1 and "unknown format" in err
    code, _, err = run(["kg", "bogus-command"], capsys)
    assert code == 2


def test_console_script_exit_codes(films: Path, tmp_path: Path) -> None:
    kqa = Path(sys.executable).parent / "kqa"
    if not kqa.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    ok = subprocess.run([str(kqa), "kg", "load", str(films), "--name", "films", "--json"],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    missing = subprocess.run([str(kqa), "kg", "load", str(tmp_path / "missing.tsv")], capture_output=True, text=True)
    assert missing.returncode == 1 and "no such file" in missing.stderr


def test_index_status_and_plugins(films: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(["kg", "load", str(films), "--name", "films"], capsys)
    code, out, _ = run(["index", "status", "--kg", "films", "--json"], capsys)
    assert code == 0 and {r["kind"]: r["state"] for r in json.loads(out)}["entities"] == "not built yet"
    code, out, _ = run(["plugins", "--json"], capsys)
    names = {p["name"] for p in json.loads(out)}
    assert {"delimited", "rdf", "graphml", "jsongraph", "minilm", "efficientnet", "hf_local", "fusions"} <= names
    code, out, _ = run(["models", "--json"], capsys)
    assert code == 0 and json.loads(out) == []


def test_train_passes_the_recogniser_settings(films: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """`kqa train` hands --no-recognise / --recognise-* to the API as its ``recognise`` option."""
    import kqa.api
    from kqa.errors import KqaError

    seen: list[object] = []

    def fake_train(*_args: object, **kwargs: object) -> object:
        seen.append(kwargs["recognise"])
        raise KqaError("stop here")

    monkeypatch.setattr(kqa.api, "train", fake_train)
    run(["kg", "load", str(films), "--name", "films"], capsys)
    code, _, err = run(["train", "--kg", "films", "--generated", "--no-recognise"], capsys)
    assert code != 0 and "stop here" in err
    run(["train", "--kg", "films", "--generated", "--recognise-photos", "8", "--recognise-size", "96"], capsys)
    run(["train", "--kg", "films", "--generated"], capsys)
    run(["train", "--kg", "films", "--generated", "--recognise-negatives", "0"], capsys)
    assert seen == [False, {"views_per_entity": 8, "size": 96}, {}, {"negatives": 0.0}]


def test_every_option_help_is_shown_as_written(capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Help texts go through rich markup: "Ignore [brackets]" was shown as "Ignore :", the
    bracketed word taken for a style. Every option's help must reach ``--help`` as written."""
    import re

    import click
    import typer

    from kqa.cli import app

    monkeypatch.setenv("COLUMNS", "2000")
    monkeypatch.setenv("TERMINAL_WIDTH", "2000")
    main(["--help"])  # registers the plugins' commands
    capsys.readouterr()

    def commands(group: click.Command, path: list[str]) -> list[tuple[list[str], click.Command]]:
        found = [(path, group)]
        for name, sub in getattr(group, "commands", {}).items():
            found += commands(sub, path + [name])
        return found

    checked = 0
    for path, command in commands(typer.main.get_command(app), []):
        main(path + ["--help"])
        shown = re.sub(r"\s+", " ", capsys.readouterr().out)
        for param in command.params:
            text = getattr(param, "help", None)
            if text:
                written = re.sub(r"\s+", " ", text.replace("\\[", "["))
                assert written in shown, f"kqa {' '.join(path)} --help: {param.name}'s help {written!r}"
                checked += 1
    assert checked > 20
