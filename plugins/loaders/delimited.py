"""Delimited triples: TSV, CSV with a header, and pipe-separated ``s|r|o`` (MetaQA's kb.txt).

``.tsv`` and ``.csv`` say their delimiter; ``.txt`` is sniffed (pipe or tab) from its first
lines. A CSV header names the columns (``subject,relation,object`` or the usual synonyms); an
optional ``datatype`` column marks the object as a typed literal.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from kqa.errors import LoadError
from kqa.hookspecs import hookimpl
from kqa.load import XSD, KGDocument, LiteralValue, TripleRecord, read_text

SUBJECT = ("subject", "s", "head", "source", "from", "h")
RELATION = ("relation", "predicate", "r", "p", "rel", "property", "edge", "label")
OBJECT = ("object", "o", "tail", "target", "to", "t", "value")
DATATYPE = ("datatype", "type", "object_type", "literal_type")
FIELDS = ("subject", "relation", "object")


def sniff_delimiter(path: Path, text: str) -> str:
    for line in text.splitlines()[:50]:
        if not line.strip() or line.startswith("#"):
            continue
        if "\t" in line:
            return "\t"
        if "|" in line:
            return "|"
        if "," in line:
            return ","
    raise LoadError(path, 1, None, "cannot tell the delimiter (expected '|', tab or ',')")


def _expand(datatype: str) -> str:
    if datatype.startswith("xsd:"):
        return XSD + datatype[4:]
    if "://" not in datatype and datatype:
        return XSD + datatype
    return datatype


class DelimitedLoader:
    """``subject<delim>relation<delim>object`` per line."""

    def __init__(self, name: str, extensions: tuple[str, ...], delimiter: str | None,
                 header: bool | None) -> None:
        self.name = name
        self.extensions = extensions
        self.delimiter = delimiter
        self.header = header

    def parse(self, path: Path, options: dict[str, Any]) -> KGDocument:
        text = read_text(path)
        delimiter = options.get("delimiter") or self.delimiter or sniff_delimiter(path, text)
        doc = KGDocument(source=path, format=self.name)
        rows = csv.reader(io.StringIO(text), delimiter=delimiter, quotechar='"',
                          strict=True) if delimiter == "," else (
            line.split(delimiter) for line in text.splitlines())
        columns = None
        seen: set[tuple[str, str, Any]] = set()
        try:
            for lineno, row in enumerate(rows, start=1):
                if not row or not any(field.strip() for field in row):
                    continue
                if row[0].startswith("#"):
                    continue
                if columns is None and (self.header or (self.header is None and _looks_like_header(row))):
                    columns = _columns(path, lineno, row)
                    continue
                triple = self._triple(path, lineno, row, columns)
                ident = (triple.subject, triple.relation, triple.object)
                if ident in seen:
                    doc.duplicates += 1
                    continue
                seen.add(ident)
                doc.triples.append(triple)
        except csv.Error as exc:
            raise LoadError(path, getattr(rows, "line_num", 0), None, f"malformed CSV: {exc}") from None
        if self.header and columns is None:
            raise LoadError(path, 1, None, "expected a header line naming subject, relation, object")
        if not doc.triples:
            raise LoadError(path, 0, None, "no triples found (the file has no data lines)")
        return doc

    def _triple(self, path: Path, lineno: int, row: list[str],
                columns: dict[str, int] | None) -> TripleRecord:
        if columns is None:
            if len(row) < 3:
                missing = FIELDS[len(row)]
                raise LoadError(path, lineno, missing,
                                f"expected 3 fields separated by {self._show()}, found {len(row)} "
                                "(truncated line?)")
            if len(row) > 3:
                raise LoadError(path, lineno, "object",
                                f"expected 3 fields separated by {self._show()}, found {len(row)}")
            values = [v.strip() for v in row]
            datatype = None
        else:
            width = max(columns.values()) + 1
            if len(row) < width:
                missing = next(f for f, i in columns.items() if i >= len(row))
                raise LoadError(path, lineno, missing, f"expected {width} columns, found {len(row)}")
            values = [row[columns[f]].strip() for f in FIELDS]
            datatype = row[columns["datatype"]].strip() if "datatype" in columns else None
        for field_name, value in zip(FIELDS, values):
            if not value:
                raise LoadError(path, lineno, field_name, "empty value")
        obj: str | LiteralValue = values[2]
        if datatype:
            obj = LiteralValue(values[2], _expand(datatype))
        return TripleRecord(values[0], values[1], obj, lineno)

    def _show(self) -> str:
        return {"\t": "tabs", "|": "'|'", ",": "commas"}.get(self.delimiter or "", "the delimiter")


def _looks_like_header(row: list[str]) -> bool:
    names = {c.strip().lower() for c in row}
    return bool(names & set(SUBJECT)) and bool(names & set(RELATION)) and bool(names & set(OBJECT))


def _columns(path: Path, lineno: int, row: list[str]) -> dict[str, int]:
    names = [c.strip().lower() for c in row]
    columns: dict[str, int] = {}
    for field_name, synonyms in (("subject", SUBJECT), ("relation", RELATION), ("object", OBJECT),
                                 ("datatype", DATATYPE)):
        for i, name in enumerate(names):
            if name in synonyms and i not in columns.values():
                columns[field_name] = i
                break
        else:
            if field_name != "datatype":
                raise LoadError(path, lineno, field_name,
                                f"the header has no {field_name} column (found: {', '.join(names)})")
    return columns


@hookimpl
def register_loaders(register):  # type: ignore[no-untyped-def]
    register(DelimitedLoader("tsv", (".tsv",), "\t", None))
    register(DelimitedLoader("csv", (".csv",), ",", True))
    register(DelimitedLoader("pipe", (".psv",), "|", False))
    register(DelimitedLoader("delimited", (".txt", ".triples"), None, None))
