"""Index stage: FAISS indexes of a KG's entity names, relation names and entity images.

One index per KG and kind, persisted under ``KQA_HOME`` with a manifest (encoder identity,
row count, KG version, checksum). Rows are keyed by stable strings (entity key + alias, image
hash + view), so an index built for an older KG version can be brought up to date by encoding
only the new rows; anything else that does not match (another encoder, a removed row, a
damaged file) is rebuilt, never silently used.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import faiss
import numpy as np

from kqa.config import kg_dir
from kqa.encode import Encoder, get_encoder
from kqa.errors import KqaError
from kqa.graph import ENTITY, KGraph, load_graph
from kqa.store import sha256_file

Progress = Callable[[str, int, int], None]
KINDS = ("entities", "relations", "images")
MODALITY = {"entities": "text", "relations": "text", "images": "image"}
APPROX_THRESHOLD = 100_000  # rows; above it an HNSW index replaces exact search
DEFAULT_IMAGE_VIEWS = 3  # augmented views indexed per entity image, besides the image itself
SEP = "\x1f"


@dataclass
class IndexManifest:
    kind: str
    encoder: dict[str, Any]
    dim: int
    rows: int
    kg_version: int
    index_type: str
    checksum: str
    image_views: int = 0
    built_at: str = ""


@dataclass
class BuildReport:
    """What ``kqa index build`` did for one index."""

    kind: str
    action: str  # built | updated | up to date | skipped
    rows: int = 0
    encoded: int = 0
    index_type: str = ""
    seconds: float = 0.0
    encode_seconds: float = 0.0
    reason: str = ""


@dataclass
class VectorIndex:
    """A loaded index: FAISS plus the row keys, their targets and the raw vectors."""

    kind: str
    manifest: IndexManifest
    index: Any
    keys: list[str]
    vectors: np.ndarray  # float16 [rows, dim], kept for incremental updates and training
    targets: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, row ids) of the ``k`` nearest rows per query (inner product = cosine)."""
        k = min(k, len(self.keys))
        if k == 0:
            empty = np.zeros((len(queries), 0))
            return empty, empty.astype(np.int64)
        scores, rows = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return scores, rows


# -- row specifications ------------------------------------------------------------------------
def entity_rows(graph: KGraph) -> tuple[list[str], list[str]]:
    """(keys, texts): every entity's name and aliases (literals are not linked to)."""
    keys, texts = [], []
    for node in range(graph.num_nodes):
        if graph.node_kind[node] != ENTITY:
            continue
        for text in dict.fromkeys([graph.node_names[node], *graph.aliases[node]]):
            if text.strip():
                keys.append(f"{graph.node_keys[node]}{SEP}{text}")
                texts.append(text)
    return keys, texts


def relation_texts(graph: KGraph) -> list[str]:
    """Forward names then inverse names: slot r is relation r, slot R + r its inverse."""
    forward = list(graph.relation_names)
    inverse = [graph.relation_inverse_names[r] or f"inverse of {graph.relation_names[r]}"
               for r in range(graph.num_relations)]
    return forward + inverse


def relation_rows(graph: KGraph) -> tuple[list[str], list[str]]:
    count = graph.num_relations
    keys = [f"{graph.relation_keys[r % count]}{SEP}{'fwd' if r < count else 'inv'}"
            for r in range(2 * count)]
    return keys, relation_texts(graph)


def image_rows(graph: KGraph, views: int) -> tuple[list[str], list[tuple[str, int]]]:
    """(keys, (path, view)): each entity image as given (view 0) plus augmented views."""
    keys, items = [], []
    for node in sorted(graph.images):
        for path in graph.images[node]:
            digest = Path(path).stem
            for view in range(views + 1):
                keys.append(f"{graph.node_keys[node]}{SEP}{digest}#{view}")
                items.append((path, view))
    return keys, items


def _row_targets(kind: str, keys: list[str], graph: KGraph) -> np.ndarray:
    if kind == "relations":
        count = graph.num_relations
        slot = {k: i for i, k in enumerate(graph.relation_keys)}
        return np.array([slot.get(k.split(SEP)[0], -1) + (count if k.endswith("inv") else 0)
                         for k in keys], dtype=np.int64)
    by_key = {graph.node_keys[i]: i for i in range(graph.num_nodes) if graph.node_kind[i] == ENTITY}
    return np.array([by_key.get(k.split(SEP, 1)[0], -1) for k in keys], dtype=np.int64)


# -- persistence -------------------------------------------------------------------------------
def index_dir(kg_name: str, kind: str) -> Path:
    return kg_dir(kg_name) / "indexes" / kind


def _save(folder: Path, manifest: IndexManifest, index: Any, keys: list[str], vectors: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "index.faiss.tmp"
    faiss.write_index(index, str(tmp))
    manifest.checksum = sha256_file(tmp)
    manifest.built_at = datetime.now(timezone.utc).isoformat()
    np.save(folder / "vectors.tmp.npy", vectors.astype(np.float16), allow_pickle=False)
    (folder / "keys.json.tmp").write_text(json.dumps(keys, ensure_ascii=False), encoding="utf-8")
    os.replace(folder / "vectors.tmp.npy", folder / "vectors.npy")
    os.replace(folder / "keys.json.tmp", folder / "keys.json")
    os.replace(tmp, folder / "index.faiss")
    (folder / "manifest.json").write_text(json.dumps(asdict(manifest), indent=2), encoding="utf-8")


def read_manifest(kg_name: str, kind: str) -> tuple[IndexManifest | None, str]:
    """The stored index's manifest alone (cheap: no checksum, no vectors), or (None, why)."""
    try:
        text = (index_dir(kg_name, kind) / "manifest.json").read_text(encoding="utf-8")
        return IndexManifest(**json.loads(text)), ""
    except FileNotFoundError:
        return None, "not built yet"
    except (ValueError, TypeError) as exc:
        return None, f"unreadable manifest ({exc})"


def read_index(kg_name: str, kind: str) -> tuple[VectorIndex | None, str]:
    """The stored index and '' if intact, else (None, why it cannot be used)."""
    folder = index_dir(kg_name, kind)
    manifest, why = read_manifest(kg_name, kind)
    if manifest is None:
        return None, why
    path = folder / "index.faiss"
    if not path.is_file() or sha256_file(path) != manifest.checksum:
        return None, "index file missing or damaged (checksum mismatch)"
    try:
        keys = json.loads((folder / "keys.json").read_text(encoding="utf-8"))
        vectors = np.load(folder / "vectors.npy", allow_pickle=False)
        index = faiss.read_index(str(path))
    except (OSError, ValueError, RuntimeError) as exc:
        return None, f"unreadable index files ({exc})"
    if not (len(keys) == manifest.rows == index.ntotal == len(vectors)):
        return None, "row counts disagree between index, keys and vectors"
    return VectorIndex(kind, manifest, _maybe_gpu(index), keys, vectors), ""


def _maybe_gpu(index: Any) -> Any:
    """GPU FAISS when the faiss-gpu build and a GPU are present (search only)."""
    if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
        try:
            return faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
        except RuntimeError:  # e.g. HNSW has no GPU version: keep the CPU index
            return index
    return index


def new_faiss_index(dim: int, rows: int, index_type: str = "auto") -> tuple[Any, str]:
    """Exact inner-product search for small KGs, HNSW above :data:`APPROX_THRESHOLD` rows."""
    chosen = index_type if index_type != "auto" else ("hnsw" if rows > APPROX_THRESHOLD else "flat")
    if chosen == "flat":
        return faiss.IndexFlatIP(dim), chosen
    if chosen == "hnsw":
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 128
        return index, chosen
    raise KqaError(f"unknown index type {index_type!r}: use auto, flat or hnsw")


def _cpu(index: Any) -> Any:
    if hasattr(faiss, "index_gpu_to_cpu") and not isinstance(index, (faiss.IndexFlat, faiss.IndexHNSW)):
        try:
            return faiss.index_gpu_to_cpu(index)
        except (RuntimeError, AttributeError, TypeError):
            return index
    return index


# -- building ----------------------------------------------------------------------------------
def _encode_items(kind: str, encoder: Encoder, items: list[Any], progress: Progress | None) -> np.ndarray:
    if kind != "images":
        return encoder.encode(items, progress=progress, stage=kind)
    from kqa.augment import TRAIN_MIX, backgrounds, in_processes

    backgrounds(TRAIN_MIX.backgrounds)  # read once here, not again in every worker
    out = np.zeros((len(items), encoder.dim), dtype=np.float32)
    batch = encoder.batch_size
    # views are made on every core (a third of the countries images' time, serially) in
    # blocks, so that a large KG's pictures are never all held at once
    block = 16 * batch
    for first in range(0, len(items), block):
        part = items[first:first + block]
        pictures = list(in_processes(lambda k: _image_view(*part[k]), len(part)))
        for start in range(0, len(part), batch):
            out[first + start:first + start + batch] = encoder.encode_batch(pictures[start:start + batch])
            if progress:
                progress(kind, min(first + start + batch, len(items)), len(items))
    return out


def _image_view(path: str, view: int) -> Any:
    """An entity image as given (view 0) or an augmented view of it, seeded by the image's
    content-hash file name, not its folder: the same views in every KQA_HOME."""
    from kqa.augment import TRAIN_MIX, distort
    from kqa.images import open_image

    image = open_image(path)
    if not view:
        return image
    seed = int(hashlib.sha1(f"{Path(path).name}#{view}".encode()).hexdigest()[:8], 16)
    return distort(image, np.random.default_rng(seed), TRAIN_MIX)


def build_index(kg_name: str, kind: str, encoder_ref: str | None = None, index_type: str = "auto",
                image_views: int | None = None, progress: Progress | None = None,
                force: bool = False) -> BuildReport:
    """Build or bring up to date one index; encodes only rows it does not have yet.
    ``image_views=None`` keeps the stored image index's number of views (3 for a new one)."""
    started = time.perf_counter()
    graph = load_graph(kg_name)
    if image_views is None:
        stored, _why = read_index(kg_name, "images") if kind == "images" else (None, "")
        image_views = stored.manifest.image_views if stored is not None else DEFAULT_IMAGE_VIEWS
    if kind == "entities":
        keys, items = entity_rows(graph)
    elif kind == "relations":
        keys, items = relation_rows(graph)
    elif kind == "images":
        keys, items = image_rows(graph, image_views)
        if not keys:
            return BuildReport(kind, "skipped", reason="the KG has no entity images")
    else:
        raise KqaError(f"unknown index kind {kind!r}: {', '.join(KINDS)}")
    encoder = get_encoder(encoder_ref, MODALITY[kind])
    existing, _why = (None, "forced") if force else read_index(kg_name, kind)
    usable = (existing is not None and existing.manifest.encoder == encoder.identity
              and (index_type == "auto" or existing.manifest.index_type == index_type)
              and existing.manifest.image_views == (image_views if kind == "images" else 0))
    old_keys = existing.keys if usable and existing else []
    if usable and existing and set(old_keys) <= set(keys):
        if existing.manifest.kg_version == graph.version and len(old_keys) == len(keys):
            return BuildReport(kind, "up to date", len(keys), 0, existing.manifest.index_type,
                               time.perf_counter() - started)
        known = set(old_keys)
        new = [i for i, k in enumerate(keys) if k not in known]
        enc_start = time.perf_counter()
        vectors = _encode_items(kind, encoder, [items[i] for i in new], progress)
        encode_seconds = time.perf_counter() - enc_start
        index = _cpu(existing.index)
        index.add(vectors)
        all_keys = old_keys + [keys[i] for i in new]
        all_vectors = np.concatenate([existing.vectors.astype(np.float16), vectors.astype(np.float16)])
        manifest = existing.manifest
        manifest.rows, manifest.kg_version = len(all_keys), graph.version
        _save(index_dir(kg_name, kind), manifest, index, all_keys, all_vectors)
        return BuildReport(kind, "updated", len(all_keys), len(new), manifest.index_type,
                           time.perf_counter() - started, encode_seconds)
    enc_start = time.perf_counter()
    vectors = _encode_items(kind, encoder, items, progress)
    encode_seconds = time.perf_counter() - enc_start
    index, chosen = new_faiss_index(encoder.dim, len(keys), index_type)
    index.add(vectors)
    manifest = IndexManifest(kind, encoder.identity, encoder.dim, len(keys), graph.version, chosen, "",
                             image_views if kind == "images" else 0)
    _save(index_dir(kg_name, kind), manifest, index, keys, vectors)
    _forget(kg_name, kind)
    return BuildReport(kind, "built", len(keys), len(keys), chosen, time.perf_counter() - started,
                       encode_seconds)


def build_indexes(kg_name: str, text_encoder: str | None = None, image_encoder: str | None = None,
                  index_type: str = "auto", image_views: int | None = None, progress: Progress | None = None,
                  force: bool = False, kinds: tuple[str, ...] = KINDS) -> list[BuildReport]:
    """``kqa index build``: every index of a KG."""
    reports = []
    for kind in kinds:
        ref = image_encoder if MODALITY[kind] == "image" else text_encoder
        reports.append(build_index(kg_name, kind, ref, index_type, image_views, progress, force))
        _forget(kg_name, kind)
    return reports


# -- opening for use ---------------------------------------------------------------------------
_open: dict[tuple[str, str, str], VectorIndex] = {}
_open_lock = threading.Lock()


def _forget(kg_name: str, kind: str) -> None:
    with _open_lock:
        for key in [k for k in _open if k[1:] == (kg_name, kind)]:
            del _open[key]


def open_index(kg_name: str, kind: str, encoder_ref: str | None = None,
               progress: Progress | None = None) -> VectorIndex | None:
    """A current index, rebuilt (incrementally where possible) if stale or mismatched.

    ``None`` for an image index of a KG without images.
    """
    graph = load_graph(kg_name)
    encoder = get_encoder(encoder_ref, MODALITY[kind])
    cache_key = (str(kg_dir(kg_name)), kg_name, kind)
    with _open_lock:
        cached = _open.get(cache_key)
        if cached and cached.manifest.kg_version == graph.version and cached.manifest.encoder == encoder.identity:
            return cached
    index, _why = read_index(kg_name, kind)
    if index is None or index.manifest.kg_version != graph.version or index.manifest.encoder != encoder.identity:
        report = build_index(kg_name, kind, encoder_ref, progress=progress)
        if report.action == "skipped":
            return None
        index, why = read_index(kg_name, kind)
        if index is None:
            raise KqaError(f"{kind} index of {kg_name!r} unusable after rebuilding: {why}")
    index.targets = _row_targets(kind, index.keys, graph)
    with _open_lock:
        _open[cache_key] = index
    return index


def index_status(kg_name: str) -> list[dict[str, Any]]:
    """Each index's manifest and whether it is current (for ``kqa index status``)."""
    version = load_graph(kg_name).version
    rows = []
    for kind in KINDS:
        index, why = read_index(kg_name, kind)
        if index is None:
            rows.append({"kind": kind, "state": why})
            continue
        state = "current" if index.manifest.kg_version == version else \
            f"stale (built for KG v{index.manifest.kg_version}, KG is v{version})"
        rows.append({"kind": kind, "state": state, **asdict(index.manifest)})
    return rows
