"""Seeded image distortions that turn a clean entity image into "a photo of it".

A KG's entity images are clean renders (a flag PNG, a logo, a product shot); the images people
ask about are photos: cropped, tilted, seen at an angle, in other light, blurred, re-compressed,
and usually sitting in a scene. This module makes such photos from any entity image, for three
uses that need the same machinery with different settings: training data (:data:`TRAIN_MIX`),
extra views in the image index, and held-out benchmarks (:data:`TEST_MIX`, with
background photos the training mix never sees). Everything is driven by a
``numpy.random.Generator``, so a seed gives the same images on every run.

Only Pillow and numpy are needed. Background photos are read straight from the image files
that ship inside scikit-image and scikit-learn (no download, no import of either package);
when those are not installed, procedural backgrounds (gradients, noise, shapes) stand in.
"""

from __future__ import annotations

import importlib.util
import io
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

BackgroundKind = Literal["train", "test"]

#: The distortion kinds, in the order :func:`distort` applies them (object first, then photo).
KINDS = ("crop", "wave", "perspective", "rotate", "paste", "jitter", "blur", "noise", "jpeg")


@dataclass(frozen=True)
class DistortionMix:
    """How likely and how strong each distortion is.

    ``*_prob`` is the chance a distortion is applied to one output; ranges are (low, high)
    and drawn uniformly. Geometric amounts are fractions of the image size, so one mix suits
    any resolution.
    """

    name: str
    crop_prob: float = 0.0
    crop_keep: tuple[float, float] = (0.8, 1.0)  # fraction of width and of height kept
    wave_prob: float = 0.0
    wave_amplitude: tuple[float, float] = (0.01, 0.04)  # of the height: fabric or paper curl
    perspective_prob: float = 0.0
    perspective: float = 0.1  # largest corner shift, as a fraction of the side
    rotate_prob: float = 0.0
    rotate_deg: float = 10.0
    paste_prob: float = 0.0
    paste_scale: tuple[float, float] = (0.3, 0.9)  # object's longer side / background's
    jitter_prob: float = 0.0
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    hue: float = 0.03  # fraction of the colour wheel
    color_cast: float = 0.08  # per-channel gain, for white balance
    blur_prob: float = 0.0
    blur_radius: tuple[float, float] = (0.3, 1.5)
    noise_prob: float = 0.0
    noise_std: tuple[float, float] = (2.0, 8.0)  # in 0..255 units
    jpeg_prob: float = 0.0
    jpeg_quality: tuple[int, int] = (40, 90)
    backgrounds: BackgroundKind = "train"
    max_side: int = 512

    def only(self, kind: str) -> DistortionMix:
        """This mix with every distortion off except ``kind``, which always applies; for
        per-distortion robustness numbers and tests."""
        if kind not in KINDS:
            raise ValueError(f"unknown distortion {kind!r}; known: {', '.join(KINDS)}")
        probs = {f.name: 0.0 for f in fields(self) if f.name.endswith("_prob")}
        return replace(self, name=f"{self.name}:{kind}", **(probs | {f"{kind}_prob": 1.0}))


NONE = DistortionMix("none")

#: For training: every range covers (and exceeds) the held-out one, so what a model meets in a
#: photo is never stronger than what it trained on; the background photos are never the
#: held-out ones.
TRAIN_MIX = DistortionMix(
    "train", crop_prob=0.6, crop_keep=(0.6, 1.0), wave_prob=0.4, wave_amplitude=(0.01, 0.05),
    perspective_prob=0.6, perspective=0.2, rotate_prob=0.6, rotate_deg=25.0,
    paste_prob=0.7, paste_scale=(0.25, 0.9), jitter_prob=0.9, brightness=0.45, contrast=0.45,
    saturation=0.45, hue=0.04, color_cast=0.15, blur_prob=0.5, blur_radius=(0.3, 2.5),
    noise_prob=0.4, noise_std=(2.0, 12.0), jpeg_prob=0.7, jpeg_quality=(20, 95),
    backgrounds="train")

#: For held-out evaluation: other probabilities, and background photos :data:`TRAIN_MIX` never uses.
TEST_MIX = DistortionMix(
    "test", crop_prob=0.7, crop_keep=(0.65, 0.95), wave_prob=0.4, wave_amplitude=(0.02, 0.05),
    perspective_prob=0.6, perspective=0.18, rotate_prob=0.6, rotate_deg=20.0,
    paste_prob=0.8, paste_scale=(0.3, 0.8), jitter_prob=0.9, brightness=0.4, contrast=0.4,
    saturation=0.4, hue=0.03, color_cast=0.12, blur_prob=0.5, blur_radius=(0.5, 2.2),
    noise_prob=0.4, noise_std=(3.0, 10.0), jpeg_prob=0.7, jpeg_quality=(25, 75),
    backgrounds="test")

MIXES = {mix.name: mix for mix in (NONE, TRAIN_MIX, TEST_MIX)}

# Photos bundled inside installed packages: (package, path in it). Train and test never share
# one, so a held-out score measures recognition in unseen scenes.
PHOTOS: dict[str, list[tuple[str, str]]] = {
    "train": [("skimage", "data/astronaut.png"), ("skimage", "data/coffee.png"),
              ("skimage", "data/rocket.jpg"), ("skimage", "data/motorcycle_left.png"),
              ("skimage", "data/brick.png"), ("skimage", "data/grass.png"),
              ("sklearn", "datasets/images/china.jpg")],
    "test": [("skimage", "data/chelsea.png"), ("skimage", "data/camera.png"),
             ("skimage", "data/gravel.png"), ("skimage", "data/coins.png"),
             ("sklearn", "datasets/images/flower.jpg")],
}
BACKGROUND_SIDE = 512  # backgrounds are stored with this shorter side


# -- backgrounds ------------------------------------------------------------------------------

def backgrounds(kind: BackgroundKind = "train", procedural: int | None = None
                ) -> list[Image.Image]:
    """Background photos for ``kind`` plus generated ones (RGB, shorter side 512 px).

    Train and test sets never share an image. ``procedural`` generated backgrounds are added
    (default: 2 when photos were found, 8 when not), so missing packages mean fewer photos,
    not an empty set.
    """
    if kind not in PHOTOS:
        raise ValueError(f"background kind must be 'train' or 'test', not {kind!r}")
    return [image.copy() for image in _backgrounds(kind, procedural)]


@lru_cache(maxsize=8)
def _backgrounds(kind: BackgroundKind, procedural: int | None = None) -> tuple[Image.Image, ...]:
    images = [photo for package, path in PHOTOS[kind]
              if (photo := _bundled_photo(package, path)) is not None]
    if procedural is None:
        procedural = 2 if images else 8
    seed = {"train": 1, "test": 2}[kind]  # different seeds: disjoint generated sets too
    rng = np.random.default_rng(seed)
    images += [procedural_background(rng) for _ in range(procedural)]
    return tuple(images)


def _bundled_photo(package: str, relative: str) -> Image.Image | None:
    """A data file shipped inside an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / relative
        if path.is_file():
            try:
                with Image.open(path) as image:
                    return _fit_short_side(image.convert("RGB"), BACKGROUND_SIDE)
            except OSError:
                return None
    return None


def _fit_short_side(image: Image.Image, side: int) -> Image.Image:
    scale = side / min(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def procedural_background(rng: np.random.Generator,
                          size: tuple[int, int] = (BACKGROUND_SIDE, BACKGROUND_SIDE)
                          ) -> Image.Image:
    """A stand-in scene: a colour gradient with texture noise and a few blurred shapes."""
    w, h = size
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = (np.cos(angle) * xx / w + np.sin(angle) * yy / h)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    pixels = a[None, None] * (1 - t[..., None]) + b[None, None] * t[..., None]
    pixels += rng.normal(0, rng.uniform(3, 20), (h, w, 1))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8).repeat(1, 2), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 9))):
        x0, y0 = rng.uniform(-0.2, 1.0) * w, rng.uniform(-0.2, 1.0) * h
        x1, y1 = x0 + rng.uniform(0.1, 0.6) * w, y0 + rng.uniform(0.1, 0.6) * h
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        else:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(1, 6)))


# -- the distortions ----------------------------------------------------------------------------

def distort(image: Image.Image, rng: np.random.Generator, mix: DistortionMix = TRAIN_MIX,
            backgrounds: Sequence[Image.Image] | None = None) -> Image.Image:
    """One distorted RGB copy of ``image`` (any mode: alpha and palettes are handled).

    Object-level distortions come first (crop, wave, perspective, rotation), then the object is
    placed in a scene (pasted on a background, or its corners filled from one when rotated),
    then photo-level ones (colour, blur, sensor noise, JPEG). ``backgrounds`` defaults to
    :func:`backgrounds` of the mix's kind.
    """
    if backgrounds is None:
        backgrounds = _backgrounds(mix.backgrounds)
    obj = _rgba(image, mix.max_side)
    use = {kind: rng.random() < getattr(mix, f"{kind}_prob") for kind in KINDS}
    if use["crop"]:
        obj = crop(obj, rng, mix.crop_keep)
    if use["wave"]:
        obj = wave(obj, rng, mix.wave_amplitude)
    if use["perspective"]:
        obj = perspective(obj, rng, mix.perspective)
    if use["rotate"]:
        obj = rotate(obj, rng.uniform(-mix.rotate_deg, mix.rotate_deg), expand=use["paste"])
    background = backgrounds[int(rng.integers(len(backgrounds)))] if backgrounds else None
    if use["paste"]:
        photo = paste(obj, rng, mix.paste_scale, background, mix.max_side)
    else:  # margins left by moving the object show the scene; the image's own transparency
        # shows white, as the paper it would be printed on
        moved = use["wave"] or use["perspective"] or use["rotate"]
        photo = _flatten(obj, rng, background if moved else None)
    if max(photo.size) > mix.max_side:  # a tilt or perspective grew the canvas
        scale = mix.max_side / max(photo.size)
        photo = _resize(photo, (round(photo.width * scale), round(photo.height * scale)))
    return _photo_level(photo, rng, mix, use)


PHOTO_LEVEL = ("jitter", "blur", "noise", "jpeg")  # what a camera does to any scene


def _photo_level(photo: Image.Image, rng: np.random.Generator, mix: DistortionMix,
                 use: dict[str, bool]) -> Image.Image:
    """The camera's distortions of :data:`PHOTO_LEVEL` that ``use`` switches on, in order."""
    if use["jitter"]:
        photo = jitter(photo, rng, mix)
    if use["blur"]:
        photo = photo.filter(ImageFilter.GaussianBlur(rng.uniform(*mix.blur_radius)))
    if use["noise"]:
        photo = noise(photo, rng, mix.noise_std)
    if use["jpeg"]:
        photo = jpeg(photo, int(rng.integers(mix.jpeg_quality[0], mix.jpeg_quality[1] + 1)))
    return photo


def no_entity_picture(rng: np.random.Generator, pool: Sequence[Image.Image],
                      mix: DistortionMix | None = None) -> Image.Image:
    """A picture of no entity: a background photo (half the time), a plain colour or noise.

    Without ``mix``: the whole photo, as the generator's questions about pictures of nothing
    use them. With a mix (training a recogniser to tell pictures of nothing from its
    entities), a random part of the photo, and the mix's camera distortions on any of the
    three, so that what the recogniser learns to turn down is a kind of picture, not a few
    exact images."""
    roll = rng.random()
    if roll < 0.5 and pool:
        picture = pool[int(rng.integers(len(pool)))].copy()
        if mix is not None:
            w, h = picture.size
            cw, ch = (max(16, round(side * rng.uniform(0.3, 1.0))) for side in (w, h))
            x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            picture = picture.crop((x, y, x + cw, y + ch))
    elif roll < 0.8:
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        picture = Image.new("RGB", (300, 200), colour)  # type: ignore[arg-type]
    else:
        picture = Image.fromarray(rng.integers(0, 256, (200, 300, 3), dtype=np.uint8))
    if mix is None:
        return picture
    use = {kind: rng.random() < getattr(mix, f"{kind}_prob") for kind in PHOTO_LEVEL}
    return _photo_level(picture.convert("RGB"), rng, mix, use)


def augmentations(image: Image.Image, n: int, seed: int = 0,
                  mix: DistortionMix = TRAIN_MIX) -> list[Image.Image]:
    """``n`` distorted copies of ``image``, the same for the same seed and mix."""
    rng = np.random.default_rng(seed)
    pool = _backgrounds(mix.backgrounds)
    return [distort(image, rng, mix, pool) for _ in range(n)]


# -- many photos at once ---------------------------------------------------------------------
_task: Callable[[int], object] | None = None  # what forked workers run (inherited, not pickled)
PARALLEL_MIN = 64  # fewer photos than this are not worth starting processes for


def _run_task(index: int) -> object:
    assert _task is not None
    return _task(index)


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def in_processes(task: Callable[[int], object], count: int, workers: int | None = None) -> Iterator[object]:
    """``task(0)``, ..., ``task(count - 1)``, in order, computed by one forked process per core.

    Distorting photos is Pillow and numpy work driven from Python: threads share one GIL and
    measured no faster, processes scale with cores (10,000 training photos took 135 s of an
    849 s set-up on 2 cores, serially). ``task`` must not use torch: the workers are forked from
    a process whose torch thread pools they do not own. Each result must depend on its index
    alone (seed each photo's generator from it), so any number of workers gives the same
    photos. Small jobs, one core, or no ``fork`` on this platform: computed here, in order."""
    global _task
    workers = workers or usable_cores()
    if workers < 2 or count < PARALLEL_MIN or "fork" not in multiprocessing.get_all_start_methods():
        yield from (task(i) for i in range(count))
        return
    previous, _task = _task, task
    # concurrent.futures, not multiprocessing.Pool: leaving a Pool early (a task raised)
    # terminates it, and that can deadlock when its task-feeding thread is mid-write (seen
    # in CI: the test of a failing task hung); an executor cancels what has not started
    executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    try:
        yield from executor.map(_run_task, range(count), chunksize=8)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        _task = previous


def _rgba(image: Image.Image, max_side: int) -> Image.Image:
    """RGBA copy no larger than ``max_side`` (palette transparency becomes real alpha)."""
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    image = image.convert("RGBA")
    if max(image.size) > max_side:
        scale = max_side / max(image.size)
        image = _resize(image, (round(image.width * scale), round(image.height * scale)))
    return image


def _resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize RGBA with premultiplied alpha, so transparent pixels leave no dark fringe."""
    size = (max(1, size[0]), max(1, size[1]))
    if image.mode != "RGBA":
        return image.resize(size, Image.Resampling.LANCZOS)
    return image.convert("RGBa").resize(size, Image.Resampling.LANCZOS).convert("RGBA")


def crop(image: Image.Image, rng: np.random.Generator,
         keep: tuple[float, float]) -> Image.Image:
    """A random window keeping ``keep`` of each side: the object is partly out of frame."""
    w, h = image.size
    cw = max(1, round(w * rng.uniform(*keep)))
    ch = max(1, round(h * rng.uniform(*keep)))
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    return image.crop((x, y, x + cw, y + ch))


def wave(image: Image.Image, rng: np.random.Generator,
         amplitude: tuple[float, float]) -> Image.Image:
    """A sinusoidal ripple with matching shading, like fabric in the wind or curled paper."""
    pixels = np.asarray(image, dtype=np.float32)
    h, w = pixels.shape[:2]
    amp = rng.uniform(*amplitude) * h
    periods = rng.uniform(0.7, 2.0)
    phase = rng.uniform(0, 2 * np.pi)
    x = np.arange(w, dtype=np.float32)
    angle = 2 * np.pi * periods * x / w + phase
    shift = amp * np.sin(angle)  # vertical displacement per column
    pad = int(np.ceil(amp)) + 1
    rows = np.arange(h + 2 * pad, dtype=np.float32)[:, None] - pad - shift[None, :]
    r0 = np.floor(rows).astype(int)
    frac = (rows - r0)[..., None]
    cols = np.broadcast_to(np.arange(w), rows.shape)
    valid0 = (r0 >= 0) & (r0 < h)
    valid1 = (r0 + 1 >= 0) & (r0 + 1 < h)
    top = np.where(valid0[..., None], pixels[np.clip(r0, 0, h - 1), cols], 0)
    bottom = np.where(valid1[..., None], pixels[np.clip(r0 + 1, 0, h - 1), cols], 0)
    out = top * (1 - frac) + bottom * frac
    shade = 1 + rng.uniform(0.08, 0.25) * np.cos(angle)  # light catches the slopes
    out[..., :3] *= shade[None, :, None]
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "RGBA")


def rotate(image: Image.Image, degrees: float, expand: bool) -> Image.Image:
    """A tilted camera; the corners become transparent (filled from the scene later)."""
    return image.convert("RGBa").rotate(degrees, Image.Resampling.BICUBIC,
                                        expand=expand).convert("RGBA")


def perspective(image: Image.Image, rng: np.random.Generator, amount: float) -> Image.Image:
    """Seen at an angle: each corner moves by up to ``amount`` of the side; the canvas grows
    to hold the result and the uncovered area is transparent."""
    w, h = image.size
    src = np.array([(0, 0), (w, 0), (w, h), (0, h)], dtype=np.float64)
    dst = src + rng.uniform(-amount, amount, (4, 2)) * (w, h)
    dst -= dst.min(axis=0)
    size = (max(1, int(np.ceil(dst[:, 0].max()))), max(1, int(np.ceil(dst[:, 1].max()))))
    coeffs = _perspective_coeffs(dst, src)  # PIL maps output → input
    return image.convert("RGBa").transform(size, Image.Transform.PERSPECTIVE, coeffs,
                                           Image.Resampling.BICUBIC).convert("RGBA")


def _perspective_coeffs(frm: np.ndarray, to: np.ndarray) -> tuple[float, ...]:
    """The 8 coefficients of the projective map taking points ``frm`` to ``to``."""
    rows = []
    for (x, y), (u, v) in zip(frm, to):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    solution = np.linalg.solve(np.array(rows), to.reshape(8))
    return tuple(float(c) for c in solution)


def paste(obj: Image.Image, rng: np.random.Generator, scale: tuple[float, float],
          background: Image.Image | None, max_side: int) -> Image.Image:
    """The object in a scene: a random view of ``background`` (or a plain grey wall) with the
    object's longer side at ``scale`` of the view's, at a random position."""
    side = int(rng.integers(min(256, max_side), max_side + 1))
    aspect = float(rng.choice([1.0, 4 / 3, 3 / 4, 3 / 2]))
    cw, ch = (side, round(side / aspect)) if aspect >= 1 else (round(side * aspect), side)
    if background is None:
        grey = int(rng.integers(60, 200))
        canvas = Image.new("RGB", (cw, ch), (grey, grey, grey))
    else:
        canvas = _view(background, rng, (cw, ch))
    fraction = rng.uniform(*scale)
    ratio = fraction * min(cw / obj.width, ch / obj.height)
    obj = _resize(obj, (round(obj.width * ratio), round(obj.height * ratio)))
    x = int(rng.integers(0, max(1, cw - obj.width + 1)))
    y = int(rng.integers(0, max(1, ch - obj.height + 1)))
    canvas = canvas.convert("RGBA")
    canvas.alpha_composite(obj, (x, y))
    return canvas.convert("RGB")


def _view(background: Image.Image, rng: np.random.Generator,
          size: tuple[int, int]) -> Image.Image:
    """A random crop of ``background`` with the aspect of ``size``, resized to it."""
    bw, bh = background.size
    aspect = size[0] / size[1]
    zoom = rng.uniform(0.5, 1.0)
    cw = min(bw, bh * aspect) * zoom
    ch = cw / aspect
    x, y = rng.uniform(0, bw - cw), rng.uniform(0, bh - ch)
    box = (int(x), int(y), int(x + cw), int(y + ch))
    if rng.random() < 0.5:
        background = background.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return background.resize(size, Image.Resampling.BILINEAR, box=box)


def _flatten(obj: Image.Image, rng: np.random.Generator,
             background: Image.Image | None) -> Image.Image:
    """RGB from RGBA: transparent parts show a view of ``background``, or white without one."""
    if obj.getextrema()[3][0] == 255:
        return obj.convert("RGB")
    if background is None:
        canvas = Image.new("RGBA", obj.size, (255, 255, 255, 255))
    else:
        canvas = _view(background, rng, obj.size).convert("RGBA")
    canvas.alpha_composite(obj)
    return canvas.convert("RGB")


def jitter(image: Image.Image, rng: np.random.Generator, mix: DistortionMix) -> Image.Image:
    """Other light and another camera: brightness, contrast, saturation, hue, white balance."""
    image = ImageEnhance.Brightness(image).enhance(1 + rng.uniform(-mix.brightness, mix.brightness))
    image = ImageEnhance.Contrast(image).enhance(1 + rng.uniform(-mix.contrast, mix.contrast))
    image = ImageEnhance.Color(image).enhance(1 + rng.uniform(-mix.saturation, mix.saturation))
    hsv = np.asarray(image.convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + round(rng.uniform(-mix.hue, mix.hue) * 255)) % 256
    pixels = np.asarray(Image.fromarray(hsv, "HSV").convert("RGB"), dtype=np.float32)
    pixels *= 1 + rng.uniform(-mix.color_cast, mix.color_cast, 3)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def noise(image: Image.Image, rng: np.random.Generator,
          std: tuple[float, float]) -> Image.Image:
    """Sensor noise: gaussian, slightly stronger in one channel as on real sensors."""
    pixels = np.asarray(image, dtype=np.float32)
    sigma = rng.uniform(*std) * rng.uniform(0.8, 1.2, 3)
    pixels = pixels + rng.normal(0.0, 1.0, pixels.shape).astype(np.float32) * sigma
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    """A JPEG save-and-load round trip: block artefacts and chroma subsampling."""
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")
