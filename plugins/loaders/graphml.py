"""GraphML through networkx: nodes are entities, edges are triples, node data are literals.

networkx decodes the typed ``<data>`` values (and yEd labels), but ElementTree keeps no line
numbers, so the XML is first read with expat into an ElementTree whose elements carry their
line in a private attribute; a small ``GraphMLReader`` subclass copies it into each node's and
edge's data. That lets every triple, entity and error point at its line, and tells declared
nodes apart from the ones networkx would silently invent for a misspelt edge endpoint.

Node data ``name``/``label``, ``type``, ``aliases`` (``|``- or comma-separated) and ``image``
(relative to the file) describe the entity; every other declared node attribute becomes a
literal triple typed from its ``attr.type``. An edge's relation is its ``relation``, ``label``,
``key`` or ``type`` data; other edge data (weights, colours) has no place in a triple and is
dropped. Like networkx, only yEd group nodes' nested graphs are read.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from xml.parsers import expat

import networkx as nx
from networkx.readwrite.graphml import GraphMLReader

from kqa.errors import LoadError
from kqa.hookspecs import hookimpl
from kqa.load import XSD, EntityRecord, KGDocument, LiteralValue, TripleRecord
from kqa.load import read_text

LINE = "{urn:kqa}line"  # private XML attribute holding an element's line number
# Keys the reader adds to networkx data; NUL-prefixed so no GraphML attribute can collide.
META_LINE, META_SOURCE, META_TARGET = "\0line", "\0source", "\0target"
NAME_KEYS = ("name", "label")
RELATION_KEYS = ("relation", "label", "key", "type")
NODE_KEYS = frozenset(NAME_KEYS + ("type", "aliases", "image", "id"))
DATATYPES = ((bool, "boolean"), (int, "integer"), (float, "double"), (str, "string"))


def _parse_xml(path: Path, data: bytes) -> ET.Element:
    """An ElementTree whose elements carry their 1-based line in the ``LINE`` attribute."""
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator="}")

    def qualify(name: str) -> str:
        return "{" + name if "}" in name else name

    def start(tag: str, attrs: dict[str, str]) -> None:
        attrib = {qualify(k): v for k, v in attrs.items()}
        attrib[LINE] = str(parser.CurrentLineNumber)
        builder.start(qualify(tag), attrib)

    parser.StartElementHandler = start
    parser.EndElementHandler = lambda tag: builder.end(qualify(tag))
    parser.CharacterDataHandler = builder.data
    parser.buffer_text = True
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise LoadError(path, exc.lineno, None,
                        f"not well-formed XML: {expat.errors.messages[exc.code]} "
                        f"(column {exc.offset + 1})") from None
    return builder.close()


class _LineReader(GraphMLReader):
    """networkx's reader, plus each element's line and an edge's endpoints as written."""

    def __init__(self, path: Path) -> None:
        super().__init__(node_type=str, force_multigraph=True)
        self.path = path

    def decode_data_elements(self, graphml_keys: dict, obj_xml: ET.Element) -> dict[str, Any]:
        line = int(obj_xml.get(LINE, "0"))
        try:
            data = super().decode_data_elements(graphml_keys, obj_xml)
        except (ValueError, KeyError, nx.NetworkXError) as exc:
            raise LoadError(self.path, line, None, f"bad <data> value: {exc}") from None
        data[META_LINE] = line
        if obj_xml.get("source") is not None:
            data[META_SOURCE] = obj_xml.get("source")
            data[META_TARGET] = obj_xml.get("target")
        return data

    def graphs(self, root: ET.Element) -> tuple[list[nx.Graph], dict[str, dict]]:
        """Every top-level graph in the file, and the declared keys (for datatypes)."""
        keys, defaults = self.find_graphml_keys(root)
        graphs = [self.make_graph(g, keys, defaults)
                  for g in root.findall(f"{{{self.NS_GRAPHML}}}graph")]
        return graphs, keys


class GraphMLLoader:
    name = "graphml"
    extensions = (".graphml",)

    def parse(self, path: Path, options: dict[str, Any]) -> KGDocument:
        data = path.read_bytes()
        if not data.strip():
            raise LoadError(path, 0, None, "no nodes: the file holds only whitespace")
        if not _declares_other_encoding(data):
            read_text(path)  # reports invalid UTF-8 with its line before expat's vaguer error
        root = _parse_xml(path, data)
        if root.tag != f"{{{GraphMLReader.NS_GRAPHML}}}graphml":
            raise LoadError(path, int(root.get(LINE, "1")), None,
                            f"not GraphML: the root element is <{root.tag}>, expected <graphml> "
                            f"in namespace {GraphMLReader.NS_GRAPHML}")
        _check_ids(path, root)
        reader = _LineReader(path)
        try:
            graphs, keys = reader.graphs(root)
        except nx.NetworkXError as exc:
            raise LoadError(path, 0, None, f"unsupported GraphML: {exc}") from None
        node_attrs = {k["name"] for k in keys.values() if k.get("for") in ("node", "all", None)}
        doc = KGDocument(source=path, format=self.name)
        for graph in graphs:
            _add_graph(doc, path, graph, node_attrs)
        if not doc.entities:
            raise LoadError(path, 0, None, "no nodes: the GraphML file declares no <node>")
        doc.triples.sort(key=lambda t: t.line)
        return doc


def _check_ids(path: Path, root: ET.Element) -> None:
    """Node ids present and unique, edges with both ends: networkx would merge or invent."""
    ns = GraphMLReader.NS_GRAPHML
    first: dict[str, str] = {}
    for node in root.iter(f"{{{ns}}}node"):
        line, node_id = node.get(LINE, "0"), node.get("id")
        if not node_id:
            raise LoadError(path, int(line), "id", "a <node> without an id")
        if node_id in first:
            raise LoadError(path, int(line), "id", f"duplicate node id {node_id!r} "
                            f"(first declared on line {first[node_id]})")
        first[node_id] = line
    for edge in root.iter(f"{{{ns}}}edge"):
        for end in ("source", "target"):
            if not edge.get(end):
                raise LoadError(path, int(edge.get(LINE, "0")), end, f"an <edge> without a {end}")


def _add_graph(doc: KGDocument, path: Path, graph: nx.Graph, node_attrs: set[str]) -> None:
    node_default = graph.graph.get("node_default", {})
    edge_default = graph.graph.get("edge_default", {})
    for node, attrs in graph.nodes(data=True):
        if META_LINE not in attrs:
            continue  # invented by networkx for an undeclared edge endpoint: reported below
        _add_node(doc, path, node, {**node_default, **attrs}, node_attrs)
    seen = {(t.subject, t.relation, t.object) for t in doc.triples}
    for u, v, attrs in graph.edges(data=True):
        attrs = {**edge_default, **attrs}
        line = attrs.get(META_LINE, 0)
        source, target = attrs.get(META_SOURCE, u), attrs.get(META_TARGET, v)
        for field_name, node in (("source", source), ("target", target)):
            if META_LINE not in graph.nodes[node]:
                raise LoadError(path, line, field_name, f"unknown node {node!r} in edge "
                                f"{source}->{target} (no <node id=...>)")
        relation = next((str(attrs[k]).strip() for k in RELATION_KEYS
                         if str(attrs.get(k, "")).strip()), None)
        if relation is None:
            raise LoadError(path, line, "relation",
                            f"edge {source}->{target} has no relation "
                            f"(give it a <data> for one of: {', '.join(RELATION_KEYS)})")
        ident = (source, relation, target)
        if ident in seen:
            doc.duplicates += 1
            continue
        seen.add(ident)
        doc.triples.append(TripleRecord(source, relation, target, line))


def _add_node(doc: KGDocument, path: Path, node: str, attrs: dict[str, Any],
              node_attrs: set[str]) -> None:
    line = attrs[META_LINE]
    name = next((str(attrs[k]).strip() for k in NAME_KEYS if str(attrs.get(k, "")).strip()), None)
    record = EntityRecord(node, name, line=line)
    if str(attrs.get("type", "")).strip():
        record.type = str(attrs["type"]).strip()
    if attrs.get("aliases"):
        raw = str(attrs["aliases"])
        record.aliases = [a.strip() for a in raw.split("|" if "|" in raw else ",") if a.strip()]
    if str(attrs.get("image", "")).strip():
        image = path.parent / str(attrs["image"]).strip()
        if not image.is_file():
            raise LoadError(path, line, "image", f"image file {image} not found for node {node!r}")
        record.image = image
    doc.entities[node] = record
    for key, value in attrs.items():
        if key in NODE_KEYS or key not in node_attrs or value is None or value == "":
            continue  # structural keys, yEd geometry, and empty values are not facts
        doc.triples.append(TripleRecord(node, key, _literal(value), line))


def _literal(value: Any) -> LiteralValue:
    """A typed literal; the datatype follows the GraphML ``attr.type`` networkx decoded."""
    for python_type, xsd in DATATYPES:
        if isinstance(value, python_type):
            text = ("true" if value else "false") if python_type is bool else str(value)
            return LiteralValue(text, XSD + xsd)
    return LiteralValue(str(value), XSD + "string")


def _declares_other_encoding(data: bytes) -> bool:
    """An XML declaration naming a non-UTF-8 encoding, which expat then decodes itself."""
    m = re.match(rb"\s*<\?xml[^>]*encoding=[\"']([A-Za-z0-9._-]+)", data[:200])
    return bool(m) and m.group(1).lower().replace(b"_", b"-") not in (b"utf-8", b"utf8")


@hookimpl
def register_loaders(register):  # type: ignore[no-untyped-def]
    register(GraphMLLoader())
