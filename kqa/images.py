"""Safe image input: every image a person gives kqa goes through :func:`open_image`.

Checks happen before decoding: the file exists, it is an image format Pillow knows, and its
pixel count is bounded, so a 20000×20000 picture is refused from its header instead of
exhausting memory. A corrupt file is refused with a readable message.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from kqa.errors import ImageError

MAX_PIXELS = 40_000_000  # ~6300×6300: any real photo, far from a decompression bomb
MAX_BYTES = 50 * 1024 * 1024


def open_image(source: str | Path | bytes | Image.Image, name: str | None = None) -> Image.Image:
    """An RGB image from a path, raw bytes or a PIL image; raises :class:`ImageError`."""
    if isinstance(source, Image.Image):
        return _rgb(source)
    label = name or (str(source) if isinstance(source, (str, Path)) else "uploaded image")
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"{label}: no such image file")
        if path.stat().st_size > MAX_BYTES:
            raise ImageError(f"{label}: file is larger than {MAX_BYTES // 2**20} MB")
        data = path.read_bytes()
    else:
        data = bytes(source)
        if len(data) > MAX_BYTES:
            raise ImageError(f"{label}: larger than {MAX_BYTES // 2**20} MB")
    if not data:
        raise ImageError(f"{label}: empty file, not an image")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise ImageError(f"{label}: not an image (or a format Pillow cannot read)") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageError(f"{label}: image too large to decode safely") from None
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise ImageError(f"{label}: {width}×{height} pixels is too large "
                             f"(limit {MAX_PIXELS:,} pixels); resize it first")
        try:
            image.load()
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageError(f"{label}: corrupt or truncated image ({exc})") from None
    return _rgb(image)


def _rgb(image: Image.Image) -> Image.Image:
    """RGB, with transparency composited on white (flags and logos often have alpha)."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
