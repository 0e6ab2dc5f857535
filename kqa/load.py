"""Load stage: turn a file (or a pack folder) into a :class:`KGDocument`.

Loaders are plugins (``register_loaders``); this module holds the types they produce, picks a
loader from the extension (or ``--format``), reads pack manifests and checks what a loader
returned before the store writes anything. A loader parses the whole file before anything is
written, so a bad line anywhere leaves the store exactly as it was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from kqa.errors import KqaError, LoadError

XSD = "http://www.w3.org/2001/XMLSchema#"


@dataclass(frozen=True, slots=True)
class LiteralValue:
    """A typed literal object (a year, a rating, a population), kept apart from entities."""

    value: str
    datatype: str = XSD + "string"


@dataclass(slots=True)
class EntityRecord:
    """An entity as a file describes it; ``key`` is its identifier within the KG."""

    key: str
    name: str | None = None
    type: str | None = None
    aliases: list[str] = field(default_factory=list)
    image: Path | None = None
    line: int = 0


@dataclass(slots=True)
class RelationRecord:
    key: str
    name: str | None = None
    inverse_name: str | None = None


@dataclass(slots=True)
class TripleRecord:
    subject: str
    relation: str
    object: str | LiteralValue
    line: int = 0


@dataclass
class KGDocument:
    """Everything one source file contributes to a KG.

    Entities referenced only by triples need no :class:`EntityRecord`; the store creates them
    with their key as name. ``duplicates`` counts triples a loader saw more than once.
    """

    source: Path
    format: str
    entities: dict[str, EntityRecord] = field(default_factory=dict)
    relations: dict[str, RelationRecord] = field(default_factory=dict)
    triples: list[TripleRecord] = field(default_factory=list)
    duplicates: int = 0
    description: str | None = None

    def entity(self, key: str) -> EntityRecord:
        """The record for ``key``, created on first mention."""
        record = self.entities.get(key)
        if record is None:
            record = self.entities[key] = EntityRecord(key)
        return record


@runtime_checkable
class Loader(Protocol):
    """What a format loader plugin provides."""

    name: str
    extensions: tuple[str, ...]

    def parse(self, path: Path, options: dict[str, Any]) -> KGDocument:
        """Parse the whole file; raise :class:`LoadError` naming file, line and field."""
        ...


def read_text(path: Path) -> str:
    """The file as text; invalid UTF-8 is reported with its line number."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise LoadError(path, line, None,
                        f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise LoadError(path, line, None, "contains NUL bytes: not a text file")
    return text


def humanize(key: str) -> str:
    """A readable label from an identifier: ``directed_by`` → ``directed by``,
    ``http://x/hasCapital`` → ``has capital``."""
    import re

    tail = re.split(r"[#/:]", key.rstrip("/#"))[-1] or key
    tail = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", tail)
    return re.sub(r"[_\-\s]+", " ", tail).strip().lower() or key


def choose_loader(path: Path, fmt: str | None, loaders: dict[str, Loader]) -> Loader:
    """The loader named by ``fmt``, else the one claiming the file's extension."""
    if fmt:
        if fmt not in loaders:
            raise KqaError(f"unknown format {fmt!r}; available: {', '.join(sorted(loaders))}")
        return loaders[fmt]
    name = path.name.lower()
    matches = [
        (len(ext), loader)
        for loader in loaders.values()
        for ext in loader.extensions
        if name.endswith(ext)
    ]
    if not matches:
        known = sorted({ext for loader in loaders.values() for ext in loader.extensions})
        raise LoadError(path, 0, None, f"cannot tell the format from the extension; use --format "
                        f"(known extensions: {', '.join(known)})")
    return max(matches, key=lambda m: m[0])[1]


@dataclass
class PackFile:
    path: Path
    format: str | None
    options: dict[str, Any]


@dataclass
class Pack:
    """A bundled knowledge pack: a folder with a ``manifest.json`` listing its files."""

    folder: Path
    name: str
    description: str
    files: list[PackFile]
    notes: list[str]
    meta: dict[str, Any] = field(default_factory=dict)


def read_pack(folder: Path) -> Pack:
    """Read ``folder/manifest.json``::

        {"name": "countries", "description": "...",
         "files": [{"path": "data/countries.json", "format": "jsongraph"}],
         "notes_file": "data/NOTES.txt"}

    Missing data files are an error that says how the pack is built.
    """
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise LoadError(folder, 0, None, "a folder must be a knowledge pack with a manifest.json")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        line = getattr(exc, "lineno", 0)
        raise LoadError(manifest_path, line, None, f"invalid manifest: {exc}") from None
    files = []
    for i, entry in enumerate(manifest.get("files", [])):
        if "path" not in entry:
            raise LoadError(manifest_path, 0, f"files[{i}].path", "missing")
        path = folder / entry["path"]
        if not path.exists():
            hint = manifest.get("build_hint", "")
            raise LoadError(manifest_path, 0, f"files[{i}].path",
                            f"{path} does not exist" + (f" ({hint})" if hint else ""))
        files.append(PackFile(path, entry.get("format"), entry.get("options", {})))
    if not files:
        raise LoadError(manifest_path, 0, "files", "the manifest lists no files")
    notes = []
    if manifest.get("notes_file") and (folder / manifest["notes_file"]).is_file():
        notes = (folder / manifest["notes_file"]).read_text(encoding="utf-8").splitlines()
    meta = {k: manifest[k] for k in ("questions",) if k in manifest}
    return Pack(folder, manifest.get("name", folder.name), manifest.get("description", ""),
                files, [n for n in notes if n.strip()], meta)


def parse_source(path: Path, fmt: str | None = None,
                 options: dict[str, Any] | None = None) -> list[KGDocument]:
    """Parse a file or a pack folder into documents, validating them; writes nothing."""
    from kqa.plugins import get_plugins

    path = Path(path).resolve()
    if not path.exists():
        raise LoadError(path, 0, None, "no such file or folder")
    loaders = get_plugins().loaders()
    if path.is_dir():
        pack = read_pack(path)
        return [parse_one(f.path, f.format, f.options, loaders) for f in pack.files]
    return [parse_one(path, fmt, options or {}, loaders)]


def parse_one(path: Path, fmt: str | None, options: dict[str, Any],
              loaders: dict[str, Loader]) -> KGDocument:
    loader = choose_loader(path, fmt, loaders)
    if path.stat().st_size == 0:
        raise LoadError(path, 0, None, "the file is empty (0 bytes)")
    doc = loader.parse(path, dict(options))
    validate(doc)
    return doc


def validate(doc: KGDocument) -> None:
    """Refuse documents that would store something meaningless."""
    if not doc.triples and not doc.entities:
        raise LoadError(doc.source, 0, None, "no triples or entities found")
    for triple in doc.triples:
        for field_name in ("subject", "relation"):
            value = getattr(triple, field_name)
            if not isinstance(value, str) or not value.strip():
                raise LoadError(doc.source, triple.line, field_name, "empty value")
        obj = triple.object
        if isinstance(obj, str) and not obj.strip():
            raise LoadError(doc.source, triple.line, "object", "empty value")
    for record in doc.entities.values():
        if record.image is not None and not Path(record.image).is_file():
            raise LoadError(doc.source, record.line, "image", f"image file {record.image} not found")
