"""Recognise stage: which of a KG's entities a photo shows.

ImageNet features describe *what kind* of thing a picture shows ("a flag"), not *which* one:
nearest neighbours over frozen EfficientNet-Lite0 vectors name the right flag in under 10 % of
held-out photos. So a KG with entity images gets its own recogniser, trained by ``kqa train``
before the answer model: the image encoder plugin's network (its :meth:`~kqa.encode.Encoder.tower`)
is fine-tuned on distorted photos of the KG's own entity images (:mod:`kqa.augment`: crops,
tilt, perspective, light, blur, JPEG, scenes) with a cosine classifier over the entities.

Entities whose images look the same (a territory that flies its sovereign's flag) cannot be
told apart by any picture: :func:`lookalikes` groups them, training treats each group as one
answer, and questions generated about such a picture accept any of them.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from kqa.encode import Encoder, ImageTower
from kqa.graph import KGraph

Progress = Callable[[str, int, int], None]
LOOKALIKE_RMSE = 2.0  # thumbnails closer than this (0..255 scale) show the same picture
LOOKALIKE_SIDE = 32  # thumbnails compared: 32 × 32 RGB
LOOKALIKE_CELL = 8  # candidates are found first on the mean colour of 8 × 8-pixel cells


@dataclass
class RecogniseConfig:
    # input side: at 128 it trains in 60 % of the time but names 93.3 % of held-out flag
    # photos instead of 96.0 % (benchmarks/link_index.py, both with the views' vote)
    size: int = 160
    dim: int = 256
    views_per_entity: int = 40
    max_views: int = 12_000
    # 4, not 3: on a 2-core machine whose kernels round differently, 3 epochs named 93.25 % of
    # the held-out photos (one view each) and 4 named 96.03 % (same seed; docs/results.md)
    epochs: int = 4
    batch_size: int = 48
    lr: float = 1e-3
    seed: int = 0
    val_views: int = 2  # held-out photos per entity (other seed, held-out mix and scenes)
    # pictures of no entity among the training photos, as a share of them (outlier
    # exposure; at least as many as one entity has): a "none of these" logit learns to beat
    # every entity on them, so that a photo of something else is not named as the entity it
    # looks least unlike
    negatives: float = 0.05
    val_negatives: int = 100  # held-out pictures of no entity (held-out scenes)
    max_minutes: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- look-alike entity images ----------------------------------------------------------------------
_lookalike_cache: dict[tuple[Any, ...], dict[int, list[int]]] = {}


def lookalikes(graph: KGraph) -> dict[int, list[int]]:
    """Entity → the entities (itself first) whose first image looks the same: equal 32×32
    thumbnails up to resampling noise. Only entities with images are keys."""
    # keyed by the image files themselves (content-addressed paths under KQA_HOME), which
    # decide the answer: a KG's name and version do not (other homes, other stores)
    key = tuple(sorted((n, tuple(p)) for n, p in graph.images.items()))
    if key not in _lookalike_cache:
        _lookalike_cache[key] = _group_lookalikes(graph)
    return _lookalike_cache[key]


def _group_lookalikes(graph: KGraph) -> dict[int, list[int]]:
    from PIL import Image

    from kqa.errors import ImageError
    from kqa.images import open_image

    nodes, thumbs = [], []
    for node in sorted(graph.images):
        try:
            picture = open_image(graph.images[node][0])
        except ImageError:
            continue
        nodes.append(node)
        side = (LOOKALIKE_SIDE, LOOKALIKE_SIDE)
        thumbs.append(np.asarray(picture.resize(side, Image.BILINEAR), dtype=np.float32).ravel())
    groups = {n: [n] for n in nodes}
    for i, j in lookalike_pairs(np.stack(thumbs)) if len(nodes) > 1 else []:
        groups[nodes[i]].append(nodes[j])
        groups[nodes[j]].append(nodes[i])
    for members in groups.values():
        members[1:] = sorted(members[1:])
    return groups


def lookalike_pairs(thumbs: np.ndarray) -> list[tuple[int, int]]:
    """The pairs (i < j) of [N, side × side × 3] thumbnails within :data:`LOOKALIKE_RMSE`.

    Comparing every pair is quadratic in pixels: 100k entity images would take minutes. But
    the squared distance of two pictures is at least 64 times that of their 8 × 8-cell mean
    colours (within a cell, Σ (a − b)² ≥ 64 · (mean a − mean b)²), so pairs farther apart than
    the line on the 48 cell means cannot be within it: candidates come from a FAISS range
    search over the means (64 times less arithmetic), and only they are compared in full.
    Exact: the same pairs as comparing all."""
    import faiss

    count = thumbs.shape[0]
    flat = np.ascontiguousarray(thumbs, dtype=np.float32).reshape(count, -1)
    cells = LOOKALIKE_SIDE // LOOKALIKE_CELL
    means = flat.reshape(count, cells, LOOKALIKE_CELL, cells, LOOKALIKE_CELL, 3).mean((2, 4)).reshape(count, -1)
    line = LOOKALIKE_RMSE ** 2 * flat.shape[1]  # on squared distances: no square root per pair
    index = faiss.IndexFlatL2(means.shape[1])
    index.add(np.ascontiguousarray(means))
    # a little above the bound: float rounding must not drop a pair on the line
    limits, _distances, found = index.range_search(np.ascontiguousarray(means),
                                                   line / LOOKALIKE_CELL ** 2 * 1.001 + 1e-3)
    pairs = []
    for i in range(count):
        for j in found[limits[i]:limits[i + 1]].tolist():
            if j > i and float(((flat[i] - flat[j]) ** 2).sum()) < line:
                pairs.append((i, j))
    return pairs


# -- the model ---------------------------------------------------------------------------------
class Recogniser(nn.Module):
    """Image tower + projection + one learned vector per recognised entity (cosine logits)."""

    def __init__(self, tower: ImageTower, entities: int, dim: int) -> None:
        super().__init__()
        self.tower = tower
        self.dim = dim
        self.project = nn.Linear(tower.dim, dim)
        self.entity_vectors = nn.Parameter(torch.zeros(entities, dim))
        self.log_scale = nn.Parameter(torch.tensor(math.log(20.0)))
        # recogniser row → KG node (-1: the entity is gone from the KG); set by the owner
        self.register_buffer("entity_nodes", torch.full((entities,), -1, dtype=torch.long),
                             persistent=False)
        self.batch_size = 32

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [B, 3, S, S] → L2-normalised [B, dim], a few images at a time
        (:func:`kqa.device.image_batch`: on a CPU, big batches are slower per image)."""
        from kqa.device import image_batch

        device = self.entity_vectors.device
        step = image_batch(device)
        return torch.cat([self.embed_frozen(self.tower.frozen(images[i:i + step].to(device)))
                          for i in range(0, len(images), step)])

    def embed_frozen(self, frozen: torch.Tensor) -> torch.Tensor:
        """The same from the tower's frozen layers' output (:meth:`ImageTower.frozen`)."""
        features = self.tower.trainable(frozen.to(self.entity_vectors.device))
        return nn.functional.normalize(self.project(features), dim=-1)

    def logits(self, embedding: torch.Tensor) -> torch.Tensor:
        """[B, dim] → [B, entities]: scaled cosine similarity to each entity's vector."""
        vectors = nn.functional.normalize(self.entity_vectors, dim=-1)
        embedding = embedding.to(vectors.device)  # encode_batch gives host arrays; the model may be on CUDA
        return nn.functional.normalize(embedding, dim=-1) @ vectors.T * self.log_scale.exp()

    @torch.no_grad()
    def encode_batch(self, items: Sequence[Any]) -> np.ndarray:
        """Images (paths, bytes, PIL) → [B, dim] float32 embeddings; the same interface as an
        encoder's, so questions with pictures are encoded the same way either way.

        Each picture is looked at whole and in four corner crops (80 % of each side): an entity
        off-centre in a photo fills more of a crop, and a crop that cuts away the part of a
        flag that tells it apart is outvoted. The views vote: the entity with the highest mean
        probability over the views wins, and the embedding is the views' embeddings weighted by
        their probability of that entity (so the model's logits name it). Chosen on 756
        held-out-mix photos of another seed than training and benchmarks, one recogniser:
        the surest single view of 70 % crops (before) 91.14 %, the same views voting 93.92 %,
        80 % crops voting 95.11 % (surest view 92.86 %)."""
        from kqa.images import open_image

        was_training = self.training
        self.eval()
        try:
            views = [view for item in items for view in corner_views(open_image(item))]
            pixels = torch.stack([self.tower.load(view) for view in views])
            embedded = self.embed(pixels).view(len(items), -1, self.dim)
            probs = torch.softmax(self.logits(embedded.flatten(0, 1)), -1).view(len(items), embedded.shape[1], -1)
            winner = probs.mean(1).argmax(-1)  # [B]
            votes = probs.gather(2, winner.view(-1, 1, 1).expand(-1, probs.shape[1], 1))  # [B, views, 1]
            best = nn.functional.normalize((embedded * votes).sum(1), dim=-1)
            return best.float().cpu().numpy()
        finally:
            self.train(was_training)


def corner_views(image: Any, keep: float = 0.8) -> list[Any]:
    """The picture and its four corner crops keeping ``keep`` of each side."""
    w, h = image.size
    cw, ch = round(w * keep), round(h * keep)
    return [image] + [image.crop((x, y, x + cw, y + ch)) for x in (0, w - cw) for y in (0, h - ch)]


def build_recogniser(encoder: Encoder, entities: int, config: RecogniseConfig) -> Recogniser | None:
    """An untrained recogniser over ``entities`` rows, or None when the encoder has no tower."""
    tower = encoder.tower(config.size)
    if tower is None:
        return None
    return Recogniser(tower, entities, config.dim)


# -- training ------------------------------------------------------------------------------------
def _photos(tower: ImageTower, sources: Sequence[Any], rows: Sequence[int], seed: int, mix: Any,
            pool: Sequence[Any], progress: Progress) -> torch.Tensor:
    """One distorted photo of ``sources[row]`` per row, as the tower's uint8 input, made on
    every core (:func:`kqa.augment.in_processes`). Each photo draws from its own generator,
    seeded by (seed, position), so a photo depends neither on how many were made before it
    nor on which process made it."""
    from kqa.augment import distort

    return _pictures(tower, len(rows), lambda k: distort(sources[rows[k]], np.random.default_rng((seed, k)),
                                                         mix, pool), progress, "recognise: photos")


def _no_entity_photos(tower: ImageTower, count: int, seed: int, mix: Any, pool: Sequence[Any],
                      progress: Progress) -> torch.Tensor:
    """``count`` pictures of no entity (:func:`kqa.augment.no_entity_picture`), seeded as
    :func:`_photos` seeds its photos but from another stream."""
    from kqa.augment import no_entity_picture

    return _pictures(tower, count, lambda k: no_entity_picture(np.random.default_rng((seed, 1, k)), pool, mix),
                     progress, "recognise: pictures of nothing")


def _pictures(tower: ImageTower, count: int, make: Callable[[int], Any], progress: Progress,
              stage: str) -> torch.Tensor:
    """``make(0)``, ..., ``make(count - 1)`` made on every core, as the tower's uint8 input."""
    from kqa.augment import in_processes

    images = torch.zeros(count, 3, tower.size, tower.size, dtype=torch.uint8)
    for k, picture in enumerate(in_processes(make, count)):
        images[k] = tower.load(picture)
        if k % 50 == 0 or k == count - 1:
            progress(stage, k + 1, count)
    return images


@dataclass
class RecogniseReport:
    entities: int
    views: int
    seconds: float
    val_accuracy: float
    history: list[dict[str, Any]]
    source: str | None = None  # the model folder it was taken from, when reused
    null_logit: float | None = None  # "none of these", learned from pictures of no entity


def train_recogniser(graph: KGraph, encoder: Encoder, config: RecogniseConfig | None = None,
                     progress: Progress | None = None,
                     log: Callable[[dict[str, Any]], None] | None = None
                     ) -> tuple[Recogniser, list[int], RecogniseReport] | None:
    """Fine-tune ``encoder``'s tower to recognise the KG's entities in photos.

    Returns (recogniser, the node of each row, report), or None when the encoder has no
    trainable tower or the KG has no usable entity images."""
    from kqa.augment import TEST_MIX, TRAIN_MIX, backgrounds
    from kqa.images import open_image

    config = config or RecogniseConfig()
    progress = progress or (lambda *_: None)
    groups = lookalikes(graph)
    nodes = sorted(groups)
    if not nodes:
        return None
    torch.manual_seed(config.seed)
    recogniser = build_recogniser(encoder, len(nodes), config)
    if recogniser is None:
        return None
    from kqa.device import autocast, default_device

    logits_device = default_device()
    recogniser.to(logits_device)
    started = time.perf_counter()
    row_of = {n: i for i, n in enumerate(nodes)}
    positives = torch.zeros(len(nodes), len(nodes), dtype=torch.bool)
    for n, same in groups.items():
        positives[row_of[n], [row_of[m] for m in same]] = True
    tower = recogniser.tower
    sources = [open_image(graph.images[n][0]) for n in nodes]
    clean = torch.stack([tower.load(s) for s in sources])
    per_entity = max(1, min(config.views_per_entity, config.max_views // len(nodes)))
    mix = replace(TRAIN_MIX, max_side=max(256, 2 * config.size))
    pool = backgrounds(mix.backgrounds)
    total = per_entity * len(nodes)
    labels = torch.arange(len(nodes)).repeat_interleave(per_entity)
    images = _photos(tower, sources, labels.tolist(), config.seed, mix, pool, progress)
    # "none of these" gets at least as many photos as an entity: 5 % of a small KG's are a handful
    nothing = max(round(config.negatives * total), per_entity) if config.negatives > 0 else 0
    null = len(nodes)  # the label of a picture of no entity: the column after the entities'
    images = torch.cat([images, clean, _no_entity_photos(tower, nothing, config.seed, mix, pool, progress)])
    labels = torch.cat([labels, torch.arange(len(nodes)), torch.full((nothing,), null)])
    wanted_of = positives  # label → its right columns
    if nothing:
        wanted_of = nn.functional.pad(positives, (0, 1, 0, 1))
        wanted_of[null, null] = True
    val_mix, val_pool = replace(TEST_MIX, max_side=mix.max_side), backgrounds(TEST_MIX.backgrounds)
    val_labels = torch.arange(len(nodes)).repeat_interleave(config.val_views)
    val_images = _photos(tower, sources, val_labels.tolist(), config.seed + 7919, val_mix, val_pool,
                         lambda *_: None)
    val_nothing = _no_entity_photos(tower, config.val_negatives if nothing else 0, config.seed + 7919,
                                    val_mix, val_pool, lambda *_: None)

    with torch.no_grad():  # start each entity's vector at its clean image
        recogniser.eval()
        recogniser.entity_vectors.copy_(recogniser.embed(clean))
    # the frozen layers see each photo once; epochs only run the layers that train
    frozen = _frozen_outputs(recogniser, images, progress)
    # "none of these" as a cosine the best entity must beat, at the logits' learned scale
    null_cosine = nn.Parameter(torch.tensor(0.5, device=logits_device))
    params = [p for p in recogniser.parameters() if p.requires_grad] + ([null_cosine] if nothing else [])
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.01)
    # small KGs: smaller batches, so that training still takes enough steps
    batch_size = max(8, min(config.batch_size, len(images) // 16))
    per_epoch = math.ceil(len(images) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr,
                                                   total_steps=max(2, per_epoch * config.epochs))
    history: list[dict[str, Any]] = []
    for epoch in range(1, config.epochs + 1):
        recogniser.train()
        order = torch.randperm(len(images))
        loss_sum = hits = 0.0
        for step in range(per_epoch):
            index = order[step * batch_size:(step + 1) * batch_size]
            batch = frozen[index]
            if epoch > 1:  # the stored photos again, each moved and rescaled a little
                batch = _shift_scale(batch)
            with autocast(logits_device):
                logits = recogniser.logits(recogniser.embed_frozen(batch)).float()
            if nothing:
                logits = torch.cat([logits, _null_column(recogniser, null_cosine, len(logits))], dim=1)
            wanted = wanted_of[labels[index]].to(logits.device)
            loss = (torch.logsumexp(logits, -1)
                    - torch.logsumexp(logits.masked_fill(~wanted, -1e4), -1)).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum += float(loss.detach()) * len(index)
            hits += float(wanted.gather(1, logits.argmax(-1, keepdim=True)).sum())
            progress(f"recognise: epoch {epoch}", min((step + 1) * batch_size, len(images)),
                     len(images))
            if config.max_minutes and time.perf_counter() - started > config.max_minutes * 60:
                break
        record = {"epoch": epoch, "seconds": round(time.perf_counter() - started, 1),
                  "loss": loss_sum / len(images), "train_accuracy": hits / len(images),
                  **_held_out_record(recogniser, null_cosine, val_images, val_labels, positives, val_nothing)}
        history.append(record)
        if log:
            log({"stage": "recognise", **record})
        if config.max_minutes and time.perf_counter() - started > config.max_minutes * 60:
            break
    recogniser.eval()
    recogniser.entity_nodes.copy_(torch.tensor(nodes))
    report = RecogniseReport(len(nodes), total, round(time.perf_counter() - started, 1),
                             history[-1]["val_accuracy"] if history else 0.0, history,
                             null_logit=float(_null_column(recogniser, null_cosine, 1).detach()) if nothing else None)
    return recogniser, nodes, report


def reuse_recogniser(graph: KGraph, encoder: Encoder, folder: Any
                     ) -> tuple[Recogniser, list[int], RecogniseReport]:
    """The recogniser of a model trained before (``kqa train --recogniser-from``): retraining
    an answer model, or training one with another fusion, then skips the slow part. It must
    have been trained with the same image encoder, on entities all still in ``graph``."""
    import json
    from pathlib import Path

    from safetensors.torch import load_file

    from kqa.errors import ModelMismatchError, NotFoundError

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise NotFoundError(f"no trained model at {folder} to take a recogniser from")
    meta = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    saved, model = meta.get("recogniser"), meta.get("model", {})
    if not saved or not model.get("recognise"):
        raise NotFoundError(f"the model at {folder} has no image recogniser to reuse")
    used = meta.get("encoders", {}).get("image", {})
    if (used.get("name"), used.get("version")) != (encoder.name, encoder.version):
        raise ModelMismatchError(f"the recogniser at {folder} was trained from image encoder "
                                 f"{used.get('name')} {used.get('version')}, not {encoder.name} {encoder.version}")
    rows = recogniser_rows(graph, saved["entities"])
    missing = [k for k, r in zip(saved["entities"], rows.tolist()) if r < 0]
    if missing:
        raise ModelMismatchError(f"the recogniser at {folder} knows entities no longer in KG {graph.name} "
                                 f"({', '.join(missing[:5])}...): train a new one")
    recogniser = build_recogniser(encoder, len(rows), RecogniseConfig(size=model["recognise_size"],
                                                                      dim=model["image_dim"]))
    if recogniser is None:
        raise ModelMismatchError(f"image encoder {encoder.name} cannot be fine-tuned")
    state = load_file(str(folder / "model.safetensors"), device="cpu")
    prefix = "recogniser."
    recogniser.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
    recogniser.entity_nodes.copy_(rows)
    from kqa.device import default_device

    recogniser.to(default_device()).eval()  # where train_recogniser leaves its own
    report = RecogniseReport(len(rows), saved.get("views", 0), saved.get("seconds", 0.0),
                             saved.get("val_accuracy", 0.0), saved.get("history", []), str(folder),
                             saved.get("null_logit"))
    return recogniser, rows.tolist(), report


@torch.no_grad()
def _frozen_outputs(recogniser: Recogniser, images: torch.Tensor, progress: Progress) -> torch.Tensor:
    """The tower's frozen layers over every stored photo, once."""
    from kqa.device import image_batch

    recogniser.eval()
    chunk = image_batch(recogniser.entity_vectors.device)
    out = []
    for start in range(0, len(images), chunk):
        out.append(recogniser.tower.frozen(images[start:start + chunk].to(recogniser.entity_vectors.device)))
        progress("recognise: frozen layers", min(start + chunk, len(images)), len(images))
    return torch.cat(out)


@torch.no_grad()
def _held_out_logits(recogniser: Recogniser, images: torch.Tensor) -> torch.Tensor:
    was_training = recogniser.training
    recogniser.eval()
    logits = [recogniser.logits(recogniser.embed(images[i:i + 64])).cpu() for i in range(0, len(images), 64)]
    recogniser.train(was_training)
    return torch.cat(logits) if logits else torch.zeros(0, len(recogniser.entity_vectors))


@torch.no_grad()
def _held_out_record(recogniser: Recogniser, null_cosine: torch.Tensor, photos: torch.Tensor,
                     labels: torch.Tensor, positives: torch.Tensor, nothing: torch.Tensor) -> dict[str, float]:
    """How the recogniser does on held-out pictures, each looked at once: the share of entity
    photos whose best row is its entity or a look-alike of it; with held-out pictures of no
    entity, also how often "none of these" wins on those (right) and on the entity photos
    (a miss)."""
    logits = _held_out_logits(recogniser, photos)
    record = {"val_accuracy": float(positives[labels, logits.argmax(-1)].float().mean()) if len(photos) else 0.0}
    if len(nothing):
        line = float(_null_column(recogniser, null_cosine, 1))
        record["val_null_on_entities"] = float((logits.amax(-1) < line).float().mean())
        record["val_null_on_nothing"] = float((_held_out_logits(recogniser, nothing).amax(-1) < line).float().mean())
    return record


def _null_column(recogniser: Recogniser, null_cosine: torch.Tensor, rows: int) -> torch.Tensor:
    """[rows, 1]: the "none of these" logit beside the entities' (:meth:`Recogniser.logits`)."""
    return (null_cosine * recogniser.log_scale.exp()).float().expand(rows, 1)


def _shift_scale(images: torch.Tensor, shift: float = 0.1, scale: tuple[float, float] = (0.85, 1.05)
                 ) -> torch.Tensor:
    """Cheap extra variety for repeated epochs: a random zoom and shift per image (pixels,
    or the feature maps of a tower's frozen layers: the same move at their resolution)."""
    size = len(images)
    theta = torch.zeros(size, 2, 3)
    zoom = torch.empty(size).uniform_(*scale)
    theta[:, 0, 0] = zoom
    theta[:, 1, 1] = zoom
    theta[:, :, 2] = torch.empty(size, 2).uniform_(-shift, shift)
    grid = nn.functional.affine_grid(theta, list(images.shape), align_corners=False)
    moved = nn.functional.grid_sample(images.float(), grid.to(images.device), padding_mode="reflection",
                                      align_corners=False)
    if images.dtype == torch.uint8:
        return moved.round().clamp(0, 255).to(torch.uint8)
    return moved.to(images.dtype)


def recogniser_rows(graph: KGraph, keys: Sequence[str]) -> torch.Tensor:
    """KG nodes for a saved recogniser's entity keys (-1 for entities no longer in the KG)."""
    by_key = {graph.node_keys[i]: i for i in sorted(graph.images)}
    return torch.tensor([by_key.get(k, -1) for k in keys], dtype=torch.long)

