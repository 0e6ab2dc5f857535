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

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from kqa import api
from kqa.errors import KqaError

app = typer.Typer(help="Knowledge-enhanced multimodal question answering.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
kg_app = typer.Typer(help="Load, list and inspect knowledge graphs.", no_args_is_help=True)
app.add_typer(kg_app, name="kg")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

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
    if_missing: bool = typer.Option(False, "--if-missing", help="Do nothing if a KG of that name exists."),
    as_json: bool = JsonOpt,
) -> None:
    """Load a KG into the store (one transaction: all or nothing)."""
    if append and replace:
        raise KqaError("--append and --replace exclude each other")
    if if_missing and name and name in {i.name for i in api.list_kgs()}:
        if as_json:
            emit_json({"kg": name, "skipped": True})
        else:
            out_line(f"KG {name!r} already loaded; not loading again (drop --if-missing to reload).")
        return
    mode = "append" if append else "replace" if replace else "create"
    with progress_bar(not as_json) as report:
        summary = api.load_kg(path, name, fmt=fmt, mode=mode, progress=report)  # type: ignore[arg-type]
    if as_json:
        emit_json(summary)
        return
    out.print(f"[bold green]Loaded[/] {escape(summary.kg)} (v{summary.version}) in {summary.seconds:.1f}s: "
              f"{summary.triples_added:,} triples, {summary.entities_added:,} entities, "
              f"{summary.relations_added} relations, {summary.literals_added:,} literals, "
              f"{summary.images_added} images; {summary.duplicates_skipped:,} duplicate triples skipped")
    for note in summary.notes:
        out.print(f"[yellow]note:[/] {escape(note)}")


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
    out.print(f"[bold]{escape(shown['name'])}[/]{escape(type_txt)}  key={escape(repr(shown['key']))}  "
              f"degree={shown['degree']}")
    if shown["aliases"]:
        out.print(Text("aliases: " + ", ".join(shown["aliases"])))
    for image in shown["images"]:
        out.print(Text(f"image: {image}"))
    table = Table("subject", "relation", "object")
    for fact in shown["facts"]:
        table.add_row(Text(fact["subject"]), Text(fact["relation_name"]), Text(fact["object"]))
    out.print(table)
    out.print(Text(f"{len(shown['neighbours'])} neighbours: " + ", ".join(shown["neighbours"][:20])))


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
    image_views: Optional[int] = typer.Option(None, help="Augmented views indexed per entity image "
                                              "(default: as stored, else 3)."),
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
                result.image_candidates = api.image_candidates(kg, q.image, model, top_k)
            results.append(result)
        if as_json:
            emit_json([r.as_dict() for r in results])
            return
        for r in results:
            best = r.candidates[0].name if r.candidates else "-"
            out.print(Text(f"{r.question}\t{best}"))
        return
    result = linker.link(question or "", top_k, scorer)
    if image is not None:
        result.image_candidates = api.image_candidates(kg, image, model, top_k)
    if as_json:
        emit_json(result.as_dict())
        return
    table = Table("entity", "score", "source", "mention")
    for c in result.candidates + result.image_candidates:
        table.add_row(Text(c.name), f"{c.score:.3f}", c.source, Text(c.mention or ""))
    if not result.candidates and not result.image_candidates:
        out.print("No entity found.")
        return
    out.print(table)


# -- train / eval / ask --------------------------------------------------------------------
@app.command("train")
def train_cmd(
    kg: str = typer.Option(..., "--kg", help="KG name."),
    questions: list[Path] = typer.Option([], "--questions", "-q",
                                         help="question<TAB>answer1|answer2[<TAB>image] files (repeatable)."),
    generated: bool = typer.Option(False, "--generated", help="Also train on questions generated from the KG."),
    out: Optional[Path] = typer.Option(None, "--out", help="Model folder (default $KQA_HOME/models/<kg>)."),
    init: Optional[Path] = typer.Option(None, "--init", help="Fine-tune from this trained model."),
    fusion: str = typer.Option("gated", "--fusion", help="Fusion strategy plugin (kqa plugins lists them)."),
    epochs: int = typer.Option(12, help="At most this many epochs (early stopping on validation)."),
    lam: float = typer.Option(1.0, "--lambda", help="Weight λ of the auxiliary losses."),
    lr: float = typer.Option(1e-3, help="Learning rate."),
    batch_size: int = typer.Option(64, help="Questions per batch."),
    val_fraction: float = typer.Option(0.1, help="Validation share carved from each file."),
    seed: int = typer.Option(0, help="Random seed (bit-identical runs need --deterministic)."),
    deterministic: bool = typer.Option(False, "--deterministic",
                                       help="Train on one CPU thread, with torch's deterministic kernels on "
                                            "CUDA: the same seed gives a bit-identical model (about 1.5× "
                                            "slower; threads sum in varying order)."),
    max_minutes: Optional[float] = typer.Option(None, help="Stop after this many minutes."),
    ema: float = typer.Option(0.99, min=0.0, max=0.9999,
                              help="Per-step decay of the moving average of the weights that is "
                                   "validated and saved (0: the last step's weights)."),
    min_steps: int = typer.Option(0, min=0, help="Optimiser steps at least: a small question set is passed "
                                                  "over several times an epoch (0: once an epoch)."),
    text_encoder: Optional[str] = typer.Option(None, help="Text encoder (default minilm)."),
    image_encoder: Optional[str] = typer.Option(None, help="Image encoder (default efficientnet-lite0)."),
    recognise: bool = typer.Option(True, "--recognise/--no-recognise",
                                   help="First fine-tune the image encoder to recognise the KG's entity images."),
    recognise_photos: Optional[int] = typer.Option(None, help="Training photos per entity image (default 40)."),
    recognise_epochs: Optional[int] = typer.Option(None, help="Recogniser epochs (default 4)."),
    recognise_size: Optional[int] = typer.Option(None, help="Recogniser input side in pixels (default 160; 128 trains in 60 % of the time, less accurate)."),
    recognise_negatives: Optional[float] = typer.Option(
        None, help="Share of the recogniser's training photos that show no entity, so that it learns to "
                   "say 'none of these' (default 0.05; 0: never)."),
    recogniser_from: Optional[Path] = typer.Option(
        None, help="Reuse the recogniser of this trained model instead of training one."),
    if_missing: bool = typer.Option(False, "--if-missing", help="Do nothing if the model exists."),
    as_json: bool = JsonOpt,
) -> None:
    """Train the answer model (L = L_answer + λ·L_other) and save it as safetensors + JSON.
    For a KG with entity images an image recogniser is fine-tuned first (the slow part on a
    CPU: fewer photos, epochs or pixels trade accuracy for time)."""
    target = api.resolve_model(kg, out)
    if if_missing and (target / "config.json").is_file():
        if as_json:
            emit_json({"model_dir": str(target), "skipped": True})
        else:
            out_line(f"Model already at {target}; not retraining (drop --if-missing to retrain).")
        return

    def log(record: dict[str, Any]) -> None:
        if not as_json:
            shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items())
            err.print(shown, highlight=False)

    with progress_bar(not as_json) as report:
        result = api.train(kg, list(questions), out, fusion=fusion, init=init, generated=generated,
                           progress=report, log=log, epochs=epochs, lam=lam, lr=lr, batch_size=batch_size,
                           val_fraction=val_fraction, seed=seed, deterministic=deterministic,
                           max_minutes=max_minutes, ema=ema, min_steps=min_steps,
                           text_encoder=text_encoder, image_encoder=image_encoder,
                           recognise=_recognise_options(recognise, recognise_photos, recognise_epochs,
                                                        recognise_size, recognise_negatives),
                           recogniser_from=recogniser_from)
    if as_json:
        emit_json(result)
        return
    out_line(f"[bold green]Trained[/] {escape(result.model_dir)}: {result.examples:,} questions "
             f"({result.train:,} train / {result.validation:,} validation), {result.epochs} epochs in "
             f"{result.seconds:.0f}s; {result.judged_on} Hits@1 "
             f"{result.val_hits1:.4f}")


def _recognise_options(enabled: bool, photos: int | None, epochs: int | None,
                       size: int | None, negatives: float | None = None) -> dict[str, float] | bool:
    """The ``recognise`` option of :func:`kqa.train`: False, or the settings given."""
    if not enabled:
        return False
    given = {"views_per_entity": photos, "epochs": epochs, "size": size, "negatives": negatives}
    return {k: v for k, v in given.items() if v is not None}


def out_line(text: str) -> None:
    out.print(text, highlight=False)


@app.command("eval")
def eval_cmd(
    kg: str = typer.Option(..., "--kg"),
    questions: list[Path] = typer.Option(..., "--questions", "-q", help="Question files with answers."),
    model: Optional[Path] = typer.Option(None, "--model", help="Model folder (default $KQA_HOME/models/<kg>)."),
    link_entities: bool = typer.Option(False, "--link", help="Ignore \\[brackets]: link topic entities from the text."),
    as_json: bool = JsonOpt,
) -> None:
    """Hits@1 and MRR of a model on question files (overall and per file)."""
    with progress_bar(not as_json) as report:
        result = api.evaluate(kg, list(questions), model, gold_topics=not link_entities, progress=report)
    if as_json:
        emit_json(result.as_dict())
        return
    table = Table("file", "questions", "Hits@1", "MRR")
    for name, row in sorted(result.per_group.items()):
        table.add_row(Text(name), f"{row['n']:,}", f"{row['hits@1']:.4f}", f"{row['mrr']:.4f}")
    table.add_row("[bold]all[/]", f"{result.n:,}", f"{result.hits1:.4f}", f"{result.mrr:.4f}")
    out.print(table)


@app.command("ask")
def ask_cmd(
    question: str = typer.Argument(..., help="The question."),
    kg: str = typer.Option(..., "--kg"),
    model: Optional[Path] = typer.Option(None, "--model", help="Model folder (default $KQA_HOME/models/<kg>)."),
    image: Optional[Path] = typer.Option(None, "--image", help="An image the question is about."),
    top_k: int = typer.Option(5, "--top-k"),
    as_json: bool = JsonOpt,
) -> None:
    """Ranked answers with confidence, evidence paths and modality contributions."""
    result = api.ask(kg, question, image=image, model=model, top_k=top_k)
    if as_json:
        emit_json(result.as_dict())
        return
    if result.message:
        err.print(f"[yellow]{escape(result.message)}[/]")
    topic = ", ".join(f"{t['name']} ({t['source']} {t['score']:.2f})" for t in result.topic[:3]) or "-"
    out_line(f"topic: {escape(topic)}")
    if result.image_topic:
        nothing = "" if result.nothing_shown is None else f"; none of these ({result.nothing_shown:.2f})"
        out_line("image: " + escape(", ".join(f"{t['name']} ({t['score']:.2f})" for t in result.image_topic[:3])
                                    + nothing))
    if result.answer_type:
        out_line("asks for: " + escape(", ".join(f"{name} ({p:.2f})" for name, p in result.answer_type[:2])))
    for rank, answer in enumerate(result.answers, start=1):
        out_line(f"[bold]{rank}. {escape(answer.name)}[/]  score {answer.score:.3f}  ({answer.hop} hop"
                 f"{'s' if answer.hop != 1 else ''})")
        for path in answer.evidence[:2]:
            out_line("     " + escape("  ·  ".join(f"{t['subject']} —{t['relation']}→ {t['object']}" for t in path)))
    shares = ", ".join(f"{k} {v:.0%}" for k, v in result.modalities.items())
    out_line(f"confidence {result.confidence:.2f}; modalities: {shares}; {result.seconds * 1000:.0f} ms")


# -- models ----------------------------------------------------------------------------------
@app.command("models")
def models_cmd(as_json: bool = JsonOpt) -> None:
    """Trained models under $KQA_HOME/models."""
    rows = api.list_models()
    if as_json:
        emit_json(rows)
        return
    table = Table("model", "kg", "fusion", "text", "image", "val Hits@1", "path")
    for r in rows:
        hits = r["metrics"].get("val_hits@1")
        table.add_row(r["name"], r["kg"], r["fusion"], r["text_encoder"] or "-", r["image_encoder"] or "-",
                      f"{hits:.4f}" if isinstance(hits, float) else "-", r["path"])
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
        table.add_row(Text(p.name), p.version or "-", ", ".join(p.hooks), Text(adds),
                      Text("; ".join(p.errors), style="red"))
    out.print(table)


def main(argv: list[str] | None = None) -> int:
    """Entry point: returns the exit code (0 success, 1 error, 2 usage)."""
    from kqa.plugins import get_plugins

    get_plugins().add_commands(app)
    try:
        app(args=argv, standalone_mode=False, prog_name="kqa")
    except KqaError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        return 1
    except typer.Exit as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except typer.Abort:
        err.print("aborted")
        return 1
    except typer.TyperException as exc:  # usage errors: unknown command, bad option, ...
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err.print(escape(str(exc)))
        return int(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
