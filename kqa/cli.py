"""The ``kqa`` command line: a thin layer over :mod:`kqa.api`.

Conventions: every command that reports something takes ``--json``; errors print one readable
line to stderr and exit non-zero; long work shows a progress bar on stderr.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

import click
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kqa import api
from kqa.errors import KqaError

app = typer.Typer(help="Knowledge-enhanced multimodal question answering.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
kg_app = typer.Typer(help="Load, list and inspect knowledge graphs.", no_args_is_help=True)
app.add_typer(kg_app, name="kg")

out = Console(soft_wrap=True)
err = Console(stderr=True)

JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")


def emit_json(obj: Any) -> None:
    """JSON on stdout, dataclasses and paths included."""
    def default(o: Any) -> Any:
        if is_dataclass(o):
            return asdict(o)  # type: ignore[arg-type]
        if isinstance(o, Path):
            return str(o)
        if hasattr(o, "tolist"):
            return o.tolist()
        return str(o)

    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2, default=default) + "\n")


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[api.ProgressCallback]:
    """A rich progress bar on stderr driven by the core's ``(stage, done, total)`` callback."""
    if not enabled or not err.is_terminal and not _force_progress():
        yield lambda *_: None
        return
    with Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=False) as bar:
        tasks: dict[str, Any] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=max(total, 1))
            bar.update(tasks[stage], completed=done, total=max(total, 1))

        yield report


def _force_progress() -> bool:
    import os

    return os.environ.get("KQA_PROGRESS") == "1"


# -- kg --------------------------------------------------------------------------------------
@kg_app.command("load")
def kg_load(
    path: Path = typer.Argument(..., help="A KG file, or a pack folder with a manifest.json."),
    name: Optional[str] = typer.Option(None, "--name", "-n", help="KG name (default: pack name or file stem)."),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="Loader name; default from the extension."),
    append: bool = typer.Option(False, "--append", help="Add to an existing KG."),
    replace: bool = typer.Option(False, "--replace", help="Replace an existing KG's contents."),
    as_json: bool = JsonOpt,
) -> None:
    """Load a KG into the store (one transaction: all or nothing)."""
    if append and replace:
        raise KqaError("--append and --replace exclude each other")
    mode = "append" if append else "replace" if replace else "create"
    with progress_bar(not as_json) as report:
        summary = api.load_kg(path, name, fmt=fmt, mode=mode, progress=report)  # type: ignore[arg-type]
    if as_json:
        emit_json(summary)
        return
    out.print(f"[bold green]Loaded[/] {summary.kg} (v{summary.version}) in {summary.seconds:.1f}s: "
              f"{summary.triples_added:,} triples, {summary.entities_added:,} entities, "
              f"{summary.relations_added} relations, {summary.literals_added:,} literals, "
              f"{summary.images_added} images; {summary.duplicates_skipped:,} duplicate triples skipped")
    for note in summary.notes:
        out.print(f"[yellow]note:[/] {note}")


@kg_app.command("list")
def kg_list(as_json: bool = JsonOpt) -> None:
    """The stored KGs with their counts."""
    infos = api.list_kgs()
    if as_json:
        emit_json(infos)
        return
    if not infos:
        out.print("No KG loaded yet: kqa kg load FILE --name NAME")
        return
    table = Table("name", "triples", "entities", "relations", "literals", "images", "version", "updated")
    for i in infos:
        table.add_row(i.name, f"{i.triples:,}", f"{i.entities:,}", str(i.relations), f"{i.literals:,}",
                      str(i.images), str(i.version), i.updated_at[:19])
    out.print(table)


@kg_app.command("show")
def kg_show(kg: str = typer.Argument(..., help="KG name."),
            entity: str = typer.Argument(..., help="Entity key or name (case-insensitive)."),
            limit: int = typer.Option(50, help="At most this many facts."),
            as_json: bool = JsonOpt) -> None:
    """An entity: its facts, neighbours and images."""
    shown = api.open_kg(kg).show(entity, limit=limit)
    if as_json:
        emit_json(shown)
        return
    type_txt = f" ({shown['type']})" if shown["type"] else ""
    out.print(f"[bold]{shown['name']}[/]{type_txt}  key={shown['key']!r}  degree={shown['degree']}")
    if shown["aliases"]:
        out.print("aliases: " + ", ".join(shown["aliases"]))
    for image in shown["images"]:
        out.print(f"image: {image}")
    table = Table("subject", "relation", "object")
    for fact in shown["facts"]:
        table.add_row(fact["subject"], fact["relation_name"], fact["object"])
    out.print(table)
    out.print(f"{len(shown['neighbours'])} neighbours: " + ", ".join(shown["neighbours"][:20]))


@kg_app.command("drop")
def kg_drop(kg: str, yes: bool = typer.Option(False, "--yes", help="Do not ask.")) -> None:
    """Delete a KG from the store."""
    if not yes and not typer.confirm(f"Delete KG {kg!r}?"):
        raise typer.Exit(1)
    api.drop_kg(kg)
    out.print(f"Deleted {kg}")


# -- plugins ---------------------------------------------------------------------------------
@app.command("plugins")
def plugins_cmd(as_json: bool = JsonOpt) -> None:
    """Every plugin: name, version, hooks, what it adds, errors."""
    from kqa.plugins import get_plugins

    infos = get_plugins().info()
    if as_json:
        emit_json(infos)
        return
    table = Table("plugin", "version", "hooks", "adds", "errors")
    for p in infos:
        adds = "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(p.adds.items()))
        table.add_row(p.name, p.version or "-", ", ".join(p.hooks), adds,
                      "[red]" + "; ".join(p.errors) + "[/]" if p.errors else "")
    out.print(table)


def main(argv: list[str] | None = None) -> int:
    """Entry point: returns the exit code (0 success, 1 error, 2 usage)."""
    from kqa.plugins import get_plugins

    get_plugins().add_commands(app)
    try:
        app(args=argv, standalone_mode=False, prog_name="kqa")
    except KqaError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        return 1
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        err.print("aborted")
        return 1
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
