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


# -- index ---------------------------------------------------------------------------------
index_app = typer.Typer(help="Build and inspect the FAISS indexes of a KG.", no_args_is_help=True)
app.add_typer(index_app, name="index")


@index_app.command("build")
def index_build(
    kg: str = typer.Option(..., "--kg", help="KG name."),
    text_encoder: Optional[str] = typer.Option(None, help="Text encoder (default minilm; hf:/path for a local model)."),
    image_encoder: Optional[str] = typer.Option(None, help="Image encoder (default efficientnet-lite0; hf-clip:/path)."),
    index_type: str = typer.Option("auto", help="auto (exact below 100k rows, HNSW above), flat or hnsw."),
    image_views: int = typer.Option(3, help="Augmented views indexed per entity image."),
    force: bool = typer.Option(False, "--force", help="Rebuild from scratch."),
    as_json: bool = JsonOpt,
) -> None:
    """Encode entity names/aliases, relations and entity images into FAISS indexes."""
    from kqa.index import build_indexes

    api.open_kg(kg)
    with progress_bar(not as_json) as report:
        reports = build_indexes(kg, text_encoder, image_encoder, index_type, image_views, report, force)
    if as_json:
        emit_json(reports)
        return
    table = Table("index", "action", "rows", "encoded", "type", "seconds", "encoding s")
    for r in reports:
        table.add_row(r.kind, r.action + (f" ({r.reason})" if r.reason else ""), f"{r.rows:,}",
                      f"{r.encoded:,}", r.index_type, f"{r.seconds:.1f}", f"{r.encode_seconds:.1f}")
    out.print(table)


@index_app.command("status")
def index_status_cmd(kg: str = typer.Option(..., "--kg"), as_json: bool = JsonOpt) -> None:
    """Each index's manifest and whether it matches the KG's current version."""
    from kqa.index import index_status

    rows = index_status(kg)
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        details = f"{row.get('rows', 0):,} rows, {row.get('index_type', '')}, encoder {row['encoder']['name']}" \
            if "encoder" in row else ""
        out.print(f"{row['kind']:<10} {row['state']}  {details}")


# -- link ----------------------------------------------------------------------------------
@app.command("link")
def link_cmd(
    question: Optional[str] = typer.Argument(None, help="The question (brackets optional)."),
    kg: str = typer.Option(..., "--kg", help="KG name."),
    image: Optional[Path] = typer.Option(None, "--image", help="An image showing the entity."),
    questions: Optional[Path] = typer.Option(None, "--questions", help="A question file to link line by line."),
    model: Optional[Path] = typer.Option(None, "--model", help="Use this trained model's mention tagger."),
    top_k: int = typer.Option(5, "--top-k"),
    as_json: bool = JsonOpt,
) -> None:
    """Candidate topic entities with scores and where each came from."""
    from kqa.link import get_linker

    if (question is None) == (questions is None):
        raise KqaError("give either a QUESTION or --questions FILE")
    linker = get_linker(api.open_kg(kg).name)
    scorer = api.mention_scorer(kg, model)
    if questions is not None:
        from kqa.questions import read_questions

        results = []
        for q in read_questions(questions):
            result = linker.link(q.text, top_k, scorer)
            if q.image is not None:
                result.image_candidates = linker.link_image(q.image, top_k)
            results.append(result)
        if as_json:
            emit_json([r.as_dict() for r in results])
            return
        for r in results:
            best = r.candidates[0].name if r.candidates else "-"
            out.print(f"{r.question}\t{best}")
        return
    result = linker.link(question or "", top_k, scorer)
    if image is not None:
        result.image_candidates = linker.link_image(image, top_k)
    if as_json:
        emit_json(result.as_dict())
        return
    table = Table("entity", "score", "source", "mention")
    for c in result.candidates + result.image_candidates:
        table.add_row(c.name, f"{c.score:.3f}", c.source, c.mention or "")
    if not result.candidates and not result.image_candidates:
        out.print("No entity found.")
        return
    out.print(table)


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
