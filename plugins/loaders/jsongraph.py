"""A JSON knowledge graph: nodes with names, types, aliases, images and attributes; edges.

::

    {"name": "countries", "description": "...",
     "relations": [{"id": "capital", "name": "capital", "inverse_name": "capital of"}],
     "nodes": [{"id": "FRA", "name": "France", "type": "country", "aliases": ["French Republic"],
                "image": "flags/fr.png", "attributes": {"population": 66078000}}],
     "edges": [{"source": "FRA", "relation": "capital", "target": "Paris"},
               {"source": "FRA", "relation": "motto", "value": "Liberté",
                "datatype": "xsd:string"}]}

``links`` is accepted for ``edges`` (networkx node-link JSON). Errors name the line: ``json``
only reports positions for syntax errors, so the top-level object is walked by hand and each
element of the big arrays is decoded on its own with ``raw_decode``, remembering where it
started. That stays one linear pass at C speed per element.
"""

from __future__ import annotations

import gc
import json
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from kqa.errors import LoadError
from kqa.hookspecs import hookimpl
from kqa.load import XSD, EntityRecord, KGDocument, LiteralValue, RelationRecord, TripleRecord
from kqa.load import read_text

WHITESPACE = re.compile(r"[ \t\n\r]*")
SEPARATOR = re.compile(r"[ \t\n\r]*([,\]])[ \t\n\r]*")
ARRAYS = ("nodes", "edges", "links", "relations")  # top-level arrays whose elements get lines
NODE_FIELDS = frozenset({"id", "name", "label", "type", "aliases", "image", "attributes"})
JSON_DATATYPES = {bool: "boolean", int: "integer", float: "double", str: "string"}


@dataclass(slots=True)
class _Element:
    """One array element and where it sits in the text."""

    value: Any
    start: int
    end: int
    line: int


class _Scanner:
    """Walks the top-level object, decoding array elements one by one to learn their lines."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text
        self.decoder = json.JSONDecoder()
        self._line, self._line_at = 1, 0  # line number of offset _line_at (offsets only grow)

    def error(self, offset: int, message: str) -> LoadError:
        line = self.text.count("\n", 0, offset) + 1
        column = offset - (self.text.rfind("\n", 0, offset) + 1) + 1
        return LoadError(self.path, line, None, f"invalid JSON: {message} (column {column})")

    def skip(self, pos: int) -> int:
        return WHITESPACE.match(self.text, pos).end()  # type: ignore[union-attr]

    def decode(self, pos: int) -> tuple[Any, int]:
        try:
            return self.decoder.raw_decode(self.text, pos)
        except json.JSONDecodeError as exc:
            raise LoadError(self.path, exc.lineno, None,
                            f"invalid JSON: {exc.msg} (column {exc.colno})") from None

    def expect(self, pos: int, char: str, what: str) -> int:
        pos = self.skip(pos)
        if self.text[pos:pos + 1] != char:
            found = repr(self.text[pos]) if pos < len(self.text) else "end of file"
            raise self.error(pos, f"expected {what}, found {found}")
        return pos + 1

    def top(self) -> tuple[dict[str, Any], dict[str, list[_Element]]]:
        """The top-level object (big arrays left out) and those arrays' located elements."""
        scalars: dict[str, Any] = {}
        arrays: dict[str, list[_Element]] = {}
        pos = self.expect(0, "{", "a JSON object '{' at the top level")
        pos = self.skip(pos)
        if self.text.startswith("}", pos):
            return scalars, arrays
        while True:
            pos = self.skip(pos)
            if not self.text.startswith('"', pos):
                raise self.error(pos, "expected a property name in double quotes")
            key, pos = self.decode(pos)
            pos = self.skip(self.expect(pos, ":", "':' after a property name"))
            if key in ARRAYS and self.text.startswith("[", pos):
                arrays[key], pos = self.array(pos + 1)
            else:
                scalars[key], pos = self.decode(pos)
            pos = self.skip(pos)
            if self.text.startswith(",", pos):
                pos += 1
                continue
            pos = self.expect(pos, "}", "',' or '}' after a value")
            break
        if self.skip(pos) != len(self.text):
            raise self.error(self.skip(pos), "extra data after the top-level object")
        return scalars, arrays

    def array(self, pos: int) -> tuple[list[_Element], int]:
        """The elements of the array starting after ``pos``'s ``[``, each with its line.

        This is the hot loop (one pass per node and edge), so it binds everything locally
        and counts newlines incrementally instead of calling helpers per element.
        """
        text, scan, skip, sep = self.text, self.decoder.scan_once, WHITESPACE.match, SEPARATOR.match
        elements: list[_Element] = []
        append = elements.append
        line, line_at = self._line, self._line_at
        start = skip(text, pos).end()  # type: ignore[union-attr]
        if text.startswith("]", start):
            return elements, start + 1
        while True:
            try:
                value, end = scan(text, start)  # raw_decode minus its Python wrapper
            except (StopIteration, json.JSONDecodeError):
                value, end = self.decode(start)  # raises with json's own message and line
            line += text.count("\n", line_at, start)
            line_at = start
            append(_Element(value, start, end, line))
            m = sep(text, end)  # whitespace, ',' or ']', whitespace: one match per element
            if m is None:
                pos = skip(text, end).end()  # type: ignore[union-attr]
                char = text[pos:pos + 1]
                raise self.error(pos, "expected ',' or ']' after an array element, found "
                                      + (repr(char) if char else "end of file"))
            if m.group(1) == "]":
                self._line, self._line_at = line, line_at
                return elements, m.end(1)
            start = m.end()


class JsonGraphLoader:
    name = "jsongraph"
    extensions = (".json", ".kg.json")

    def parse(self, path: Path, options: dict[str, Any]) -> KGDocument:
        with _gc_paused():
            return self._parse(path)

    def _parse(self, path: Path) -> KGDocument:
        text = read_text(path)
        if not text.strip():
            raise LoadError(path, 0, None, "the file holds only whitespace")
        scanner = _Scanner(path, text)
        top, arrays = scanner.top()
        _check_top(path, text, top)
        doc = KGDocument(source=path, format=self.name)
        if isinstance(top.get("description"), str):
            doc.description = top["description"]
        builder = _Builder(path, text, doc)
        builder.relations(arrays.get("relations", []))
        builder.nodes(arrays.get("nodes", []))
        for key in ("edges", "links"):  # "links" is networkx node-link's name for edges
            builder.edges(key, arrays.get(key, []))
        if not doc.entities and not doc.triples:
            raise LoadError(path, 0, None, 'no nodes or edges: expected "nodes" and "edges" arrays')
        return doc


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic GC while building records: the 10^5 new objects would trigger repeated full
    collections (about half the parse time) yet create no cycles to collect."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _check_top(path: Path, text: str, top: dict[str, Any]) -> None:
    """The arrays must be arrays: a ``"nodes": {...}`` would otherwise be silently ignored."""
    for key in ARRAYS:
        if top.get(key) is not None:
            at = text.find(f'"{key}"')
            raise LoadError(path, text.count("\n", 0, max(at, 0)) + 1, key,
                            f"must be an array, found {type(top[key]).__name__}")


class _Builder:
    """Checks each located element and turns it into records, naming the field at fault."""

    def __init__(self, path: Path, text: str, doc: KGDocument) -> None:
        self.path = path
        self.text = text
        self.doc = doc
        self.seen: set[tuple[str, str, Any]] = set()

    def fail(self, element: _Element, field: str, reason: str) -> LoadError:
        """The error at the line of ``field``'s last path part inside the element, if found."""
        key = field.rsplit(".", 1)[-1]
        line = element.line
        if "[" not in key:
            at = self.text.find(f'"{key}"', element.start, element.end)
            if at >= 0:
                line += self.text.count("\n", element.start, at)
        return LoadError(self.path, line, field, reason)

    def relations(self, elements: list[_Element]) -> None:
        for i, el in enumerate(elements):
            rel = el.value
            if not isinstance(rel, dict):
                raise self.fail(el, f"relations[{i}]", "must be an object")
            key = _ident(rel.get("id"))
            if key is None:
                raise self.fail(el, f"relations[{i}].id", "missing (a non-empty string)")
            self.doc.relations[key] = RelationRecord(key, _text(rel.get("name")),
                                                     _text(rel.get("inverse_name")))

    def nodes(self, elements: list[_Element]) -> None:
        entities = self.doc.entities
        for i, el in enumerate(elements):
            node = el.value
            if type(node) is not dict:
                raise self.fail(el, f"nodes[{i}]", "must be an object")
            key = _ident(node.get("id"))
            if key is None:
                raise self.fail(el, f"nodes[{i}].id", "missing (a non-empty string or an integer)")
            if key in entities:
                raise self.fail(el, f"nodes[{i}].id", f"duplicate node id {key!r} "
                                f"(first declared on line {entities[key].line})")
            record = entities[key] = EntityRecord(
                key, _text(node.get("name")) or _text(node.get("label")), _text(node.get("type")),
                line=el.line)
            if node.get("aliases") is not None:
                record.aliases = self.aliases(el, f"nodes[{i}]", node["aliases"])
            if node.get("image") is not None:
                record.image = self.image(el, f"nodes[{i}]", node["image"])
            attributes = node.get("attributes")
            if attributes is not None:
                if type(attributes) is not dict:
                    raise self.fail(el, f"nodes[{i}].attributes", "must be an object")
                self.attributes(el, f"nodes[{i}].attributes", key, attributes)
            if not node.keys() <= NODE_FIELDS:
                # networkx node-link JSON keeps attributes flat on the node; take those too.
                extra = {k: v for k, v in node.items() if k not in NODE_FIELDS}
                self.attributes(el, f"nodes[{i}]", key, extra)

    def attributes(self, el: _Element, where: str, key: str, values: dict[str, Any]) -> None:
        """One literal triple per attribute value; a list gives one triple per item."""
        for name, value in values.items():
            for item in value if type(value) is list else (value,):
                if item is None:
                    continue
                literal = _literal(item)
                if literal is None:
                    raise self.fail(el, f"{where}.{name}",
                                    f"unsupported value {item!r}: use a string, number or boolean")
                self.add(TripleRecord(key, name, literal, el.line))

    def aliases(self, el: _Element, where: str, value: Any) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
            raise self.fail(el, f"{where}.aliases", "must be a list of strings")
        return [a.strip() for a in value if a.strip()]

    def image(self, el: _Element, where: str, value: Any) -> Path:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(el, f"{where}.image", "must be a path (relative to the JSON file)")
        image = self.path.parent / value
        if not image.is_file():
            raise self.fail(el, f"{where}.image", f"image file {image} not found")
        return image

    def edges(self, array: str, elements: list[_Element]) -> None:
        """Edges in one loop with a fast path for the usual string ids; oddities go slow."""
        entities, seen, triples = self.doc.entities, self.seen, self.doc.triples
        for i, el in enumerate(elements):
            edge = el.value
            if type(edge) is not dict:
                raise self.fail(el, f"{array}[{i}]", "must be an object")
            source, relation, target = edge.get("source"), edge.get("relation"), edge.get("target")
            if type(source) is not str or source not in entities:
                source = self.endpoint(el, f"{array}[{i}].source", source)
            if type(relation) is not str or not relation.strip():
                raise self.fail(el, f"{array}[{i}].relation", "missing (a non-empty string)")
            relation = relation.strip()
            obj: str | LiteralValue
            if target is not None and "value" not in edge:
                obj = target if type(target) is str and target in entities else \
                    self.endpoint(el, f"{array}[{i}].target", target)
            else:
                obj = self.value(el, f"{array}[{i}]", edge)
            ident = (source, relation, obj)
            if ident in seen:
                self.doc.duplicates += 1
                continue
            seen.add(ident)
            triples.append(TripleRecord(source, relation, obj, el.line))

    def endpoint(self, el: _Element, field: str, value: Any) -> str:
        """A node id that is not a plain known string: an integer, padded, unknown or missing."""
        key = _ident(value)
        if value is None:
            raise self.fail(el, field, "missing (a node id)")
        if key is None or key not in self.doc.entities:
            raise self.fail(el, field, f"unknown node {value!r}")
        return key

    def value(self, el: _Element, where: str, edge: dict[str, Any]) -> LiteralValue:
        has_target, has_value = edge.get("target") is not None, "value" in edge
        if has_target == has_value:
            field = f"{where}.value" if has_target else f"{where}.target"
            raise self.fail(el, field, "give exactly one of target (a node id) or value "
                                       f"(a literal); found {'both' if has_target else 'neither'}")
        literal = _literal(edge["value"], edge.get("datatype"))
        if literal is None:
            raise self.fail(el, f"{where}.value",
                            f"unsupported value {edge['value']!r}: use a string, number or boolean")
        return literal

    def add(self, triple: TripleRecord) -> None:
        ident = (triple.subject, triple.relation, triple.object)
        if ident in self.seen:
            self.doc.duplicates += 1
            return
        self.seen.add(ident)
        self.doc.triples.append(triple)


def _ident(value: Any) -> str | None:
    """Node ids may be strings or integers (networkx writes integers); both become text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _literal(value: Any, datatype: Any = None) -> LiteralValue | None:
    """A typed literal; an explicit ``datatype`` wins over the JSON type."""
    xsd = JSON_DATATYPES.get(type(value))
    if xsd is None:
        return None
    if xsd == "boolean":
        text = "true" if value else "false"
    elif xsd == "double":
        text = repr(value)
    else:
        text = str(value)
    if isinstance(datatype, str) and datatype.strip():
        return LiteralValue(text, _expand(datatype.strip()))
    return LiteralValue(text, XSD + xsd)


def _expand(datatype: str) -> str:
    if datatype.startswith("xsd:"):
        return XSD + datatype[4:]
    if "://" not in datatype:
        return XSD + datatype
    return datatype


@hookimpl
def register_loaders(register):  # type: ignore[no-untyped-def]
    register(JsonGraphLoader())
