"""RDF through rdflib: N-Triples, Turtle, RDF/XML and JSON-LD.

Every IRI or blank node is an entity; label-like statements (``rdfs:label``, ``skos:prefLabel``,
``schema:name``, ``foaf:name``, ``skos:altLabel``) become its name and aliases instead of
triples, because a KG answer should read "Paris", not repeat ``rdfs:label`` facts. ``rdf:type``
sets the entity's type and is also kept as a triple, so "which things are cities" stays
answerable. Literal objects keep their datatype (language-tagged strings are
``rdf:langString``).

rdflib parses RDF as a set, so exact duplicates would vanish silently; a recording store
counts them instead and remembers the order statements were read in, which keeps the triple
order (and blank-node numbering) the same from one load of a file to the next. N-Triples is
read line by line so its triples and errors carry real line numbers; the other syntaxes give
line numbers for errors only (rdflib does not report where each triple came from).
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from rdflib import BNode, Graph, Literal
from rdflib.plugins.parsers.ntriples import W3CNTriplesParser
from rdflib.plugins.stores.memory import Memory
from rdflib.term import Node

from kqa.errors import LoadError
from kqa.hookspecs import hookimpl
from kqa.load import (XSD, EntityRecord, KGDocument, LiteralValue, RelationRecord, TripleRecord,
                      humanize)
from kqa.load import read_text

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
SKOS = "http://www.w3.org/2004/02/skos/core#"
OWL = "http://www.w3.org/2002/07/owl#"
RDF_TYPE = RDF + "type"
LANG_STRING = RDF + "langString"

# Name-giving predicates, best first: the first one with an English/untagged value names it.
NAME_PREDICATES = (
    RDFS + "label",
    SKOS + "prefLabel",
    "http://schema.org/name",
    "https://schema.org/name",
    "http://xmlns.com/foaf/0.1/name",
)
ALIAS_PREDICATES = (SKOS + "altLabel",)
LABEL_PREDICATES = frozenset(NAME_PREDICATES + ALIAS_PREDICATES)
# Types every OWL individual has; they say nothing, so another type wins when there is one.
VACUOUS_TYPES = frozenset({OWL + "Thing", OWL + "NamedIndividual", RDFS + "Resource"})

Triple = tuple[Node, Node, Node]


class _RecordingStore(Memory):
    """An in-memory store that remembers the order statements arrived in and counts repeats.

    Hooking the store (not the Graph) sees every parser's writes, including JSON-LD's,
    which go through a ConjunctiveGraph wrapped around the same store.
    """

    def __init__(self) -> None:
        super().__init__()
        self.order: list[Triple] = []
        self.seen: set[Triple] = set()
        self.duplicates = 0

    def add(  # type: ignore[override]
            self, triple: Any, context: Any, quoted: bool = False) -> None:
        if triple in self.seen:
            self.duplicates += 1
        else:
            self.seen.add(triple)
            self.order.append(triple)
        super().add(triple, context, quoted=quoted)


@dataclass
class _Parsed:
    """Statements in reading order, the line of each (0 when unknown), and repeats."""

    triples: list[Triple]
    lines: list[int]
    duplicates: int = 0


@dataclass
class _Labels:
    """Label literals seen for one node: (predicate rank, language rank, order, text)."""

    candidates: list[tuple[int, int, int, str]] = field(default_factory=list)

    def add(self, predicate: str, literal: Literal, order: int) -> None:
        rank = (NAME_PREDICATES.index(predicate) if predicate in NAME_PREDICATES
                else len(NAME_PREDICATES))
        self.candidates.append((rank, _language_rank(literal.language), order, str(literal)))

    def name_and_aliases(self) -> tuple[str | None, list[str]]:
        """The best English-or-untagged name label; every other label becomes an alias."""
        names = [c for c in self.candidates if c[0] < len(NAME_PREDICATES)]
        if not names:
            return None, _unique(c[3] for c in sorted(self.candidates, key=lambda c: c[2]))
        best = min(names, key=lambda c: (c[1], c[0], c[2]))
        rest = (c[3] for c in sorted(self.candidates, key=lambda c: c[2]) if c is not best)
        return best[3], [a for a in _unique(rest) if a != best[3]]


def _language_rank(language: str | None) -> int:
    if not language or language.lower() == "en":
        return 0
    if language.lower().startswith("en-"):
        return 1
    return 2


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v.strip()))


class RdfLoader:
    """One rdflib syntax, registered under its own ``--format`` name."""

    def __init__(self, name: str, rdflib_format: str, extensions: tuple[str, ...]) -> None:
        self.name = name
        self.rdflib_format = rdflib_format
        self.extensions = extensions

    def parse(self, path: Path, options: dict[str, Any]) -> KGDocument:
        if self.name == "nt":
            parsed = _parse_ntriples(path, read_text(path))
        else:
            parsed = self._parse_with_rdflib(path, path.read_bytes(), options)
        if not parsed.triples:
            raise LoadError(path, 0, None,
                            "no triples: the file parsed but holds no RDF statements")
        doc = KGDocument(source=path, format=self.name, duplicates=parsed.duplicates)
        _build(doc, parsed)
        return doc

    def _parse_with_rdflib(self, path: Path, data: bytes, options: dict[str, Any]) -> _Parsed:
        if not data.strip():
            raise LoadError(path, 0, None, "no triples: the file holds only whitespace")
        source: str | bytes
        if self.name == "rdfxml" and _declares_other_encoding(data):
            source = data  # the XML parser honours the declared encoding
        else:
            source = read_text(path)
        if self.name == "jsonld":
            _check_jsonld(path, str(source), bool(options.get("allow_remote_context")))
        store = _RecordingStore()
        try:
            if isinstance(source, bytes):
                Graph(store=store).parse(source=io.BytesIO(source), format=self.rdflib_format,
                                         publicID=path.as_uri())
            else:
                Graph(store=store).parse(data=source, format=self.rdflib_format,
                                         publicID=path.as_uri())
        except Exception as exc:  # rdflib raises many unrelated types; all mean "bad file"
            raise _syntax_error(path, self.name, source, exc) from None
        return _Parsed(store.order, [0] * len(store.order), store.duplicates)


def _parse_ntriples(path: Path, text: str) -> _Parsed:
    """N-Triples one line at a time, so every triple and every error has its line number."""
    got: list[Triple] = []

    class Sink:
        def triple(self, s: Node, p: Node, o: Node) -> None:
            got.append((s, p, o))

    parser = W3CNTriplesParser(sink=Sink())  # type: ignore[arg-type]
    bnodes: dict[str, Node] = {}
    parsed = _Parsed([], [])
    seen: set[Triple] = set()
    for lineno, line in enumerate(re.split(r"\r\n|\r|\n", text), start=1):
        if not line.strip():
            continue
        parser.line = line
        try:
            parser.parseline(bnode_context=bnodes)
        except Exception as exc:  # ParseError, or ValueError from a bad escape or literal
            why = "unexpected or missing term" if str(exc).startswith("Failed to eat") else exc
            raise LoadError(path, lineno, None,
                            f"not a valid N-Triples statement ({why}; truncated line?): "
                            f"{line.strip()[:120]!r}") from None
        for triple in got:
            if triple in seen:
                parsed.duplicates += 1
            else:
                seen.add(triple)
                parsed.triples.append(triple)
                parsed.lines.append(lineno)
        got.clear()
    return parsed


def _declares_other_encoding(data: bytes) -> bool:
    """An XML declaration naming a non-UTF-8 encoding (Latin-1 RDF/XML still exists)."""
    m = re.match(rb"\s*<\?xml[^>]*encoding=[\"']([A-Za-z0-9._-]+)", data[:200])
    return bool(m) and m.group(1).lower().replace(b"_", b"-") not in (b"utf-8", b"utf8")


def _check_jsonld(path: Path, text: str, allow_remote: bool) -> None:
    """JSON syntax errors with their line, and no silent network fetches for remote contexts.

    rdflib would download a ``"@context": "https://schema.org/"`` while loading; kqa runs
    offline, so that is refused (unless ``allow_remote_context``) with a hint to inline it.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LoadError(path, exc.lineno, None,
                        f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    if allow_remote:
        return
    remote = _remote_context(data)
    if remote:
        line = text.count("\n", 0, max(text.find(remote), 0)) + 1
        raise LoadError(path, line, "@context",
                        f"remote JSON-LD context {remote!r} would be fetched from the network; "
                        "inline the context in the file (or pass the option allow_remote_context)")


def _remote_context(data: Any) -> str | None:
    """The first remote context IRI (``@context`` or ``@import`` value) anywhere in ``data``."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            for key, value in item.items():
                if key in ("@context", "@import"):
                    refs = value if isinstance(value, list) else [value]
                    for ref in refs:
                        if isinstance(ref, str) and re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*://", ref) \
                                and not ref.startswith("file:"):
                            return ref
                stack.append(value)
    return None


def _syntax_error(path: Path, syntax: str, source: str | bytes, exc: Exception) -> LoadError:
    """Turn whatever rdflib raised into a LoadError, digging out the line where possible."""
    text = source if isinstance(source, str) else source.decode("latin-1")
    line = 0
    reason = str(exc)
    offset = getattr(exc, "_i", None)  # notation3.BadSyntax: character offset into the document
    raw = getattr(exc, "_str", None)
    if isinstance(offset, int) and isinstance(raw, bytes):
        doc = raw.decode("utf-8", "replace")
        line = doc.count("\n", 0, offset) + 1
        here = doc[:offset].rsplit("\n", 1)[-1] + doc[offset:].split("\n", 1)[0]
        reason = f"bad syntax ({getattr(exc, '_why', 'parse error')}) in {here.strip()[:120]!r}"
    elif hasattr(exc, "getLineNumber"):  # SAXParseException from the RDF/XML parser
        line = exc.getLineNumber() or 0
        reason = f"XML error: {exc.getMessage()} (column {exc.getColumnNumber()})"
    else:  # e.g. rdflib's ParserError "<system id>:4:2: message", or a JSON-LD TypeError
        m = re.search(r":(\d+):\d+:\s*", reason) or re.search(r"line (\d+)", reason)
        if m:
            line = int(m.group(1))
            reason = reason[m.end():] if m.re.pattern.startswith(":") else reason
        reason = f"invalid {syntax}: {reason or type(exc).__name__}"
    if line > text.count("\n") + 1:
        line = text.count("\n") + 1
    return LoadError(path, line, None, reason.strip() or type(exc).__name__)


class _Keys:
    """Stable entity keys: IRIs as themselves, blank nodes numbered in reading order.

    rdflib gives blank nodes random ids on every parse; numbering them ``_:b1``, ``_:b2``...
    by first appearance makes reloading the same file produce the same keys.
    """

    def __init__(self) -> None:
        self.bnodes: dict[Node, str] = {}

    def __call__(self, node: Node) -> str:
        if isinstance(node, BNode):
            key = self.bnodes.get(node)
            if key is None:
                key = self.bnodes[node] = f"_:b{len(self.bnodes) + 1}"
            return key
        return str(node)


def _literal(lit: Literal) -> LiteralValue:
    if lit.language:
        return LiteralValue(str(lit), LANG_STRING)
    return LiteralValue(str(lit), str(lit.datatype) if lit.datatype else XSD + "string")


def _build(doc: KGDocument, parsed: _Parsed) -> None:
    """Split statements into labels (names, aliases), types and stored triples."""
    key = _Keys()
    labels: dict[str, _Labels] = {}
    types: dict[str, list[str]] = {}
    predicates: set[str] = set()
    in_triples: dict[str, None] = {}  # keys used by stored triples, in reading order
    first_line: dict[str, int] = {}  # node key → line of its first statement of any kind
    for order, ((s, p, o), line) in enumerate(zip(parsed.triples, parsed.lines)):
        subject, predicate = key(s), str(p)
        first_line.setdefault(subject, line)
        if predicate in LABEL_PREDICATES and isinstance(o, Literal):
            labels.setdefault(subject, _Labels()).add(predicate, o, order)
            continue
        predicates.add(predicate)
        in_triples[subject] = None
        if isinstance(o, Literal):
            obj: str | LiteralValue = _literal(o)
        else:
            obj = key(o)
            in_triples[obj] = None
            first_line.setdefault(obj, line)
            if predicate == RDF_TYPE:
                types.setdefault(subject, []).append(obj)
        doc.triples.append(TripleRecord(subject, predicate, obj, line))
    names = {k: lab.name_and_aliases() for k, lab in labels.items()}
    for predicate in sorted(predicates):
        doc.relations[predicate] = _relation(predicate, names)
    # A property described only by its label is relation metadata, not an entity.
    keys = list(in_triples) + [k for k in labels if k not in in_triples and k not in predicates]
    for k in keys:
        name, aliases = names.get(k, (None, []))
        record = EntityRecord(k, name or _fallback_name(k), aliases=aliases,
                              line=first_line.get(k, 0))
        record.type = _entity_type(types.get(k, []), names)
        doc.entities[k] = record


def _relation(predicate: str, names: dict[str, tuple[str | None, list[str]]]) -> RelationRecord:
    label = names.get(predicate, (None, []))[0]
    return RelationRecord(predicate, label or humanize(predicate))


def _fallback_name(key: str) -> str:
    return key if key.startswith("_:") else humanize(key)


def _entity_type(classes: list[str], names: dict[str, tuple[str | None, list[str]]]) -> str | None:
    """The class's own label when the file gives one, else its humanized local name."""
    if not classes:
        return None
    useful = [c for c in classes if c not in VACUOUS_TYPES] or classes
    chosen = useful[0]
    return names.get(chosen, (None, []))[0] or _fallback_name(chosen)


@hookimpl
def register_loaders(register):  # type: ignore[no-untyped-def]
    register(RdfLoader("nt", "nt", (".nt", ".ntriples")))
    register(RdfLoader("turtle", "turtle", (".ttl", ".turtle")))
    register(RdfLoader("rdfxml", "xml", (".rdf", ".owl", ".xml")))
    register(RdfLoader("jsonld", "json-ld", (".jsonld", ".json-ld")))
