"""Store stage: knowledge graphs in a relational database through SQLAlchemy 2.

SQLite under ``KQA_HOME`` by default; ``KQA_DATABASE_URL`` selects another database
(PostgreSQL for scale). Several named KGs live side by side. A load is one transaction: either
every triple of every file lands, or nothing changes. Tables are prefixed ``kqa_`` so the store
can share a database with other applications.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Literal as TypingLiteral

from sqlalchemy import (
    JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint, create_engine,
    delete, event, func, insert, select, update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kqa.config import database_url, kqa_home
from kqa.errors import KqaError, LoadError, NotFoundError
from kqa.load import KGDocument, LiteralValue

Progress = Callable[[str, int, int], None]
WriteMode = TypingLiteral["create", "append", "replace"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class KGRow(Base):
    __tablename__ = "kqa_graphs"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # pack metadata (question templates)
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class EntityRow(Base):
    __tablename__ = "kqa_entities"
    __table_args__ = (UniqueConstraint("kg_id", "key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kg_id: Mapped[int] = mapped_column(ForeignKey("kqa_graphs.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    type: Mapped[str | None] = mapped_column(Text)
    aliases: Mapped[list[str]] = mapped_column(JSON, default=list)


class RelationRow(Base):
    __tablename__ = "kqa_relations"
    __table_args__ = (UniqueConstraint("kg_id", "key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kg_id: Mapped[int] = mapped_column(ForeignKey("kqa_graphs.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    inverse_name: Mapped[str | None] = mapped_column(Text)


class LiteralRow(Base):
    __tablename__ = "kqa_literals"
    __table_args__ = (UniqueConstraint("kg_id", "value", "datatype"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kg_id: Mapped[int] = mapped_column(ForeignKey("kqa_graphs.id", ondelete="CASCADE"), index=True)
    value: Mapped[str] = mapped_column(Text)
    datatype: Mapped[str] = mapped_column(Text)


class SourceRow(Base):
    """Provenance: one loaded file."""

    __tablename__ = "kqa_sources"
    id: Mapped[int] = mapped_column(primary_key=True)
    kg_id: Mapped[int] = mapped_column(ForeignKey("kqa_graphs.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(50))
    sha256: Mapped[str] = mapped_column(String(64))
    triples: Mapped[int] = mapped_column(Integer, default=0)
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class TripleRow(Base):
    __tablename__ = "kqa_triples"
    __table_args__ = (
        Index("ix_kqa_triples_subject", "subject_id"),
        Index("ix_kqa_triples_object", "object_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    kg_id: Mapped[int] = mapped_column(ForeignKey("kqa_graphs.id", ondelete="CASCADE"), index=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("kqa_entities.id", ondelete="CASCADE"))
    relation_id: Mapped[int] = mapped_column(ForeignKey("kqa_relations.id", ondelete="CASCADE"))
    object_id: Mapped[int | None] = mapped_column(ForeignKey("kqa_entities.id", ondelete="CASCADE"))
    literal_id: Mapped[int | None] = mapped_column(ForeignKey("kqa_literals.id", ondelete="CASCADE"))
    source_id: Mapped[int | None] = mapped_column(ForeignKey("kqa_sources.id", ondelete="CASCADE"))
    line: Mapped[int] = mapped_column(Integer, default=0)


class ImageRow(Base):
    """An entity's image, copied into ``KQA_HOME/images`` under its content hash."""

    __tablename__ = "kqa_entity_images"
    id: Mapped[int] = mapped_column(primary_key=True)
    kg_id: Mapped[int] = mapped_column(ForeignKey("kqa_graphs.id", ondelete="CASCADE"), index=True)
    entity_id: Mapped[int] = mapped_column(ForeignKey("kqa_entities.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    source_path: Mapped[str | None] = mapped_column(Text)


_CHILD_TABLES = (ImageRow, TripleRow, LiteralRow, EntityRow, RelationRow, SourceRow)
_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def get_engine(url: str | None = None) -> Engine:
    """One engine per database URL per process, schema created on first use."""
    url = url or database_url()
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _make_engine(url)
            Base.metadata.create_all(engine)
            _add_missing_columns(engine)
            _engines[url] = engine
        return engine


def _add_missing_columns(engine: Engine) -> None:
    """Columns added to kqa's tables after a store was created (``create_all`` only creates
    missing tables): add them, nullable, so older stores keep working."""
    from sqlalchemy import inspect

    inspector = inspect(engine)
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in present:
                    kind = column.type.compile(dialect=engine.dialect)
                    conn.exec_driver_sql(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}')


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return create_engine(url, pool_pre_ping=True)


def dispose_engines() -> None:
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


@dataclass
class LoadSummary:
    """What a load did, for the CLI summary and ``--json``."""

    kg: str
    mode: str
    files: list[str]
    triples_added: int = 0
    entities_added: int = 0
    relations_added: int = 0
    literals_added: int = 0
    images_added: int = 0
    duplicates_skipped: int = 0
    seconds: float = 0.0
    version: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class KGInfo:
    name: str
    description: str | None
    version: int
    triples: int
    entities: int
    relations: int
    literals: int
    images: int
    sources: list[str]
    updated_at: str


class Store:
    """All reads and writes of the knowledge store go through here."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or database_url()
        self.engine = get_engine(self.url)

    # -- writing ---------------------------------------------------------------------------
    def write(self, kg_name: str, docs: list[KGDocument], mode: WriteMode = "create",
              description: str | None = None, progress: Progress | None = None,
              meta: dict[str, Any] | None = None) -> LoadSummary:
        """Write parsed documents into ``kg_name`` in one transaction.

        ``create`` refuses an existing name; ``append`` adds to it (creating it if missing);
        ``replace`` swaps its contents. On any error nothing is written.
        """
        if not kg_name or len(kg_name) > 200 or "/" in kg_name or kg_name.startswith("."):
            raise KqaError(f"invalid KG name {kg_name!r}: 1-200 characters, no '/', not starting with '.'")
        summary = LoadSummary(kg_name, mode, [str(d.source) for d in docs])
        report = progress or (lambda *_: None)
        with self.engine.begin() as conn:
            kg = conn.execute(select(KGRow.id, KGRow.version).where(KGRow.name == kg_name)).one_or_none()
            if kg is not None and mode == "create":
                raise KqaError(f"a KG named {kg_name!r} already exists: use --append to add to it "
                               "or --replace to swap its contents")
            if kg is not None and mode == "replace":
                self._clear(conn, kg.id)
            if kg is None:
                kg_id = conn.execute(insert(KGRow).values(
                    name=kg_name, description=description, version=0,
                    created_at=_now(), updated_at=_now()).returning(KGRow.id)).scalar_one()
                version = 0
            else:
                kg_id, version = kg.id, kg.version
            writer = _Writer(conn, kg_id, summary, report)
            for doc in docs:
                writer.write_doc(doc)
            summary.version = version + 1
            values: dict[str, Any] = {"version": summary.version, "updated_at": _now()}
            if description is not None:
                values["description"] = description
            if meta is not None:
                values["meta"] = meta
            conn.execute(update(KGRow).where(KGRow.id == kg_id).values(**values))
        return summary

    @staticmethod
    def _clear(conn: Connection, kg_id: int) -> None:
        for table in _CHILD_TABLES:
            conn.execute(delete(table).where(table.kg_id == kg_id))

    def drop(self, kg_name: str) -> None:
        """Delete a KG and everything in it."""
        with self.engine.begin() as conn:
            kg_id = self._kg_id(conn, kg_name)
            self._clear(conn, kg_id)
            conn.execute(delete(KGRow).where(KGRow.id == kg_id))

    # -- reading ---------------------------------------------------------------------------
    def _kg_id(self, conn: Connection, kg_name: str) -> int:
        kg_id = conn.execute(select(KGRow.id).where(KGRow.name == kg_name)).scalar_one_or_none()
        if kg_id is None:
            names = [r for (r,) in conn.execute(select(KGRow.name).order_by(KGRow.name))]
            known = f"; known KGs: {', '.join(names)}" if names else "; no KG is loaded yet (kqa kg load)"
            raise NotFoundError(f"no KG named {kg_name!r}{known}")
        return kg_id

    def names(self) -> list[str]:
        with self.engine.connect() as conn:
            return [r for (r,) in conn.execute(select(KGRow.name).order_by(KGRow.name))]

    def version(self, kg_name: str) -> int:
        with self.engine.connect() as conn:
            kg_id = self._kg_id(conn, kg_name)
            return conn.execute(select(KGRow.version).where(KGRow.id == kg_id)).scalar_one()

    def meta(self, kg_name: str) -> dict[str, Any]:
        """Metadata a knowledge pack brought along (e.g. question templates); {} if none."""
        with self.engine.connect() as conn:
            kg_id = self._kg_id(conn, kg_name)
            return conn.execute(select(KGRow.meta).where(KGRow.id == kg_id)).scalar_one() or {}

    def info(self, kg_name: str) -> KGInfo:
        with self.engine.connect() as conn:
            kg_id = self._kg_id(conn, kg_name)
            kg = conn.execute(select(KGRow.name, KGRow.description, KGRow.version, KGRow.updated_at)
                             .where(KGRow.id == kg_id)).one()

            def count(table: Any) -> int:
                return conn.execute(select(func.count()).select_from(table)
                                    .where(table.kg_id == kg_id)).scalar_one()

            sources = [p for (p,) in conn.execute(select(SourceRow.path).where(SourceRow.kg_id == kg_id)
                                                 .order_by(SourceRow.id))]
            return KGInfo(kg.name, kg.description, kg.version, count(TripleRow), count(EntityRow),
                          count(RelationRow), count(LiteralRow), count(ImageRow), sources,
                          kg.updated_at.isoformat() if kg.updated_at else "")

    def list(self) -> list[KGInfo]:
        return [self.info(name) for name in self.names()]

    def relations(self, kg_name: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            kg_id = self._kg_id(conn, kg_name)
            rows = conn.execute(select(RelationRow.id, RelationRow.key, RelationRow.name,
                                       RelationRow.inverse_name)
                                .where(RelationRow.kg_id == kg_id).order_by(RelationRow.id))
            return [dict(r._mapping) for r in rows]

    def entities(self, kg_name: str) -> list[dict[str, Any]]:
        """All entities: id, key, name, type, aliases (for graph building and linking)."""
        with self.engine.connect() as conn:
            kg_id = self._kg_id(conn, kg_name)
            rows = conn.execute(select(EntityRow.id, EntityRow.key, EntityRow.name, EntityRow.type,
                                       EntityRow.aliases)
                                .where(EntityRow.kg_id == kg_id).order_by(EntityRow.id))
            return [dict(r._mapping) for r in rows]

    def literals(self, kg_name: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            kg_id = self._kg_id(conn, kg_name)
            rows = conn.execute(select(LiteralRow.id, LiteralRow.value, LiteralRow.datatype)
                                .where(LiteralRow.kg_id == kg_id).order_by(LiteralRow.id))
            return [dict(r._mapping) for r in rows]

    def triple_ids(self, kg_name: str) -> list[tuple[int, int, int | None, int | None]]:
        """(subject_id, relation_id, object_id, literal_id) for every triple."""
        with self.engine.connect() as conn:
            kg_id = self._kg_id(conn, kg_name)
            rows = conn.execute(select(TripleRow.subject_id, TripleRow.relation_id, TripleRow.object_id,
                                       TripleRow.literal_id)
                                .where(TripleRow.kg_id == kg_id).order_by(TripleRow.id))
            return [tuple(r) for r in rows]

    def images(self, kg_name: str) -> list[dict[str, Any]]:
        """Every entity image: entity_id, path (under KQA_HOME), sha256."""
        with self.engine.connect() as conn:
            kg_id = self._kg_id(conn, kg_name)
            rows = conn.execute(select(ImageRow.entity_id, ImageRow.path, ImageRow.sha256)
                                .where(ImageRow.kg_id == kg_id).order_by(ImageRow.id))
            return [dict(r._mapping) for r in rows]

    def provenance(self, kg_name: str, entity_id: int) -> list[dict[str, Any]]:
        """Every triple touching an entity, with its source file and line."""
        with self.engine.connect() as conn:
            kg_id = self._kg_id(conn, kg_name)
            subj = EntityRow.__table__.alias("s")
            obj = EntityRow.__table__.alias("o")
            stmt = (
                select(subj.c.name.label("subject"), RelationRow.name.label("relation"),
                       func.coalesce(obj.c.name, LiteralRow.value).label("object"),
                       LiteralRow.datatype.label("datatype"), SourceRow.path.label("source"),
                       TripleRow.line)
                .select_from(TripleRow)
                .join(subj, subj.c.id == TripleRow.subject_id)
                .join(RelationRow, RelationRow.id == TripleRow.relation_id)
                .outerjoin(obj, obj.c.id == TripleRow.object_id)
                .outerjoin(LiteralRow, LiteralRow.id == TripleRow.literal_id)
                .outerjoin(SourceRow, SourceRow.id == TripleRow.source_id)
                .where(TripleRow.kg_id == kg_id)
                .where((TripleRow.subject_id == entity_id) | (TripleRow.object_id == entity_id))
                .order_by(TripleRow.id)
            )
            return [dict(r._mapping) for r in conn.execute(stmt)]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _Writer:
    """Bulk inserts for one load, inside the caller's transaction."""

    BATCH = 5000

    def __init__(self, conn: Connection, kg_id: int, summary: LoadSummary, report: Progress) -> None:
        self.conn, self.kg_id, self.summary, self.report = conn, kg_id, summary, report
        self.entity_ids = self._existing(EntityRow.key, EntityRow.id)
        self.relation_ids = self._existing(RelationRow.key, RelationRow.id)
        self.literal_ids: dict[tuple[str, str], int] = {
            (v, d): i for v, d, i in conn.execute(
                select(LiteralRow.value, LiteralRow.datatype, LiteralRow.id)
                .where(LiteralRow.kg_id == kg_id))
        }
        self.existing_triples: set[tuple[int, int, int | None, int | None]] | None = None

    def _existing(self, key_col: Any, id_col: Any) -> dict[str, int]:
        table = key_col.class_
        return dict(self.conn.execute(select(key_col, id_col).where(table.kg_id == self.kg_id)).all())

    def _insert_returning(self, table: Any, rows: list[dict[str, Any]], key: Callable[[dict], Any],
                          stage: str) -> dict[Any, int]:
        out: dict[Any, int] = {}
        for start in range(0, len(rows), self.BATCH):
            chunk = rows[start:start + self.BATCH]
            result = self.conn.execute(
                insert(table).returning(table.id, sort_by_parameter_order=True), chunk)
            for row, (new_id,) in zip(chunk, result):
                out[key(row)] = new_id
            self.report(stage, min(start + self.BATCH, len(rows)), len(rows))
        return out

    def write_doc(self, doc: KGDocument) -> None:
        source_id = self.conn.execute(insert(SourceRow).values(
            kg_id=self.kg_id, path=str(doc.source), format=doc.format,
            sha256=sha256_file(doc.source), triples=0, loaded_at=_now())
            .returning(SourceRow.id)).scalar_one()
        self._write_relations(doc)
        self._write_entities(doc)
        self._write_literals(doc)
        added = self._write_triples(doc, source_id)
        self._write_images(doc)
        self.conn.execute(update(SourceRow).where(SourceRow.id == source_id).values(triples=added))
        self.summary.duplicates_skipped += doc.duplicates

    def _write_relations(self, doc: KGDocument) -> None:
        keys = {t.relation for t in doc.triples} | set(doc.relations)
        from kqa.load import humanize

        rows = []
        for key in sorted(keys - set(self.relation_ids)):
            record = doc.relations.get(key)
            rows.append({"kg_id": self.kg_id, "key": key,
                         "name": (record.name if record and record.name else humanize(key)),
                         "inverse_name": record.inverse_name if record else None})
        self.relation_ids.update(self._insert_returning(RelationRow, rows, lambda r: r["key"],
                                                        "relations"))
        self.summary.relations_added += len(rows)

    def _write_entities(self, doc: KGDocument) -> None:
        keys: dict[str, None] = dict.fromkeys(doc.entities)
        for t in doc.triples:
            keys[t.subject] = None
            if isinstance(t.object, str):
                keys[t.object] = None
        rows, updates = [], []
        for key in keys:
            record = doc.entities.get(key)
            values = {
                "name": (record.name if record and record.name else key),
                "type": record.type if record else None,
                "aliases": list(dict.fromkeys(record.aliases)) if record else [],
            }
            if key in self.entity_ids:
                if record is not None and (record.name or record.type or record.aliases):
                    updates.append((self.entity_ids[key], values))
            else:
                rows.append({"kg_id": self.kg_id, "key": key, **values})
        self.entity_ids.update(self._insert_returning(EntityRow, rows, lambda r: r["key"], "entities"))
        for entity_id, values in updates:
            self.conn.execute(update(EntityRow).where(EntityRow.id == entity_id).values(**values))
        self.summary.entities_added += len(rows)

    def _write_literals(self, doc: KGDocument) -> None:
        wanted = {(t.object.value, t.object.datatype) for t in doc.triples
                  if isinstance(t.object, LiteralValue)}
        rows = [{"kg_id": self.kg_id, "value": v, "datatype": d}
                for v, d in sorted(wanted - set(self.literal_ids))]
        self.literal_ids.update(self._insert_returning(
            LiteralRow, rows, lambda r: (r["value"], r["datatype"]), "literals"))
        self.summary.literals_added += len(rows)

    def _load_existing_triples(self) -> set[tuple[int, int, int | None, int | None]]:
        if self.existing_triples is None:
            self.existing_triples = set(
                tuple(r) for r in self.conn.execute(
                    select(TripleRow.subject_id, TripleRow.relation_id, TripleRow.object_id,
                           TripleRow.literal_id).where(TripleRow.kg_id == self.kg_id)))
        return self.existing_triples

    def _write_triples(self, doc: KGDocument, source_id: int) -> int:
        seen = self._load_existing_triples()
        rows = []
        for t in doc.triples:
            if isinstance(t.object, LiteralValue):
                obj, lit = None, self.literal_ids[(t.object.value, t.object.datatype)]
            else:
                obj, lit = self.entity_ids[t.object], None
            ident = (self.entity_ids[t.subject], self.relation_ids[t.relation], obj, lit)
            if ident in seen:
                self.summary.duplicates_skipped += 1
                continue
            seen.add(ident)
            rows.append({"kg_id": self.kg_id, "subject_id": ident[0], "relation_id": ident[1],
                         "object_id": obj, "literal_id": lit, "source_id": source_id, "line": t.line})
        for start in range(0, len(rows), self.BATCH * 4):
            self.conn.execute(insert(TripleRow), rows[start:start + self.BATCH * 4])
            self.report("triples", min(start + self.BATCH * 4, len(rows)), len(rows))
        self.summary.triples_added += len(rows)
        return len(rows)

    def _write_images(self, doc: KGDocument) -> None:
        records = [r for r in doc.entities.values() if r.image is not None]
        if not records:
            return
        store_dir = kqa_home() / "images"
        store_dir.mkdir(parents=True, exist_ok=True)
        existing = {(e, s) for e, s in self.conn.execute(
            select(ImageRow.entity_id, ImageRow.sha256).where(ImageRow.kg_id == self.kg_id))}
        rows = []
        for i, record in enumerate(records):
            src = Path(record.image)
            try:
                digest = sha256_file(src)
            except OSError as exc:
                raise LoadError(doc.source, record.line, "image", f"cannot read {src}: {exc}") from None
            entity_id = self.entity_ids[record.key]
            if (entity_id, digest) in existing:
                continue
            dest = store_dir / f"{digest}{src.suffix.lower()}"
            if not dest.exists():
                shutil.copyfile(src, dest)
            rows.append({"kg_id": self.kg_id, "entity_id": entity_id, "path": str(dest),
                         "sha256": digest, "source_path": str(src)})
            self.report("images", i + 1, len(records))
        if rows:
            self.conn.execute(insert(ImageRow), rows)
        self.summary.images_added += len(rows)


def iter_batches(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
