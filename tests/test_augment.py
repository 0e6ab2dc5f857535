"""kqa.augment: seeded, realistic distortions of entity images."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from kqa import augment
from kqa.augment import KINDS, NONE, TEST_MIX, TRAIN_MIX, augmentations, backgrounds, distort


def flag_like(size: tuple[int, int] = (120, 80)) -> Image.Image:
    """Three stripes and a disc: enough structure that every distortion shows."""
    w, h = size
    image = Image.new("RGB", size, (0, 85, 164))
    draw = ImageDraw.Draw(image)
    draw.rectangle((w // 3, 0, 2 * w // 3, h), fill=(255, 255, 255))
    draw.rectangle((2 * w // 3, 0, w, h), fill=(239, 65, 53))
    draw.ellipse((w // 3, h // 4, 2 * w // 3, 3 * h // 4), fill=(255, 204, 0))
    return image


def digest(image: Image.Image) -> str:
    return hashlib.sha256(image.tobytes() + repr((image.mode, image.size)).encode()).hexdigest()


def test_same_seed_same_images_other_seed_other_images() -> None:
    first = augmentations(flag_like(), 4, seed=7, mix=TRAIN_MIX)
    again = augmentations(flag_like(), 4, seed=7, mix=TRAIN_MIX)
    other = augmentations(flag_like(), 4, seed=8, mix=TRAIN_MIX)
    assert [digest(i) for i in first] == [digest(i) for i in again]
    assert [digest(i) for i in first] != [digest(i) for i in other]
    assert len({digest(i) for i in first}) == 4  # four different views, not one repeated


@pytest.mark.parametrize("mix", [TRAIN_MIX, TEST_MIX, NONE], ids=lambda m: m.name)
def test_outputs_are_rgb_of_sane_size(mix: augment.DistortionMix) -> None:
    big = flag_like((1000, 667))
    for image in augmentations(big, 6, seed=1, mix=mix) + augmentations(flag_like(), 6, seed=2,
                                                                         mix=mix):
        assert image.mode == "RGB"
        assert max(image.size) <= mix.max_side
        assert min(image.size) >= 8


def test_none_mix_only_converts() -> None:
    image = flag_like()
    out = distort(image, np.random.default_rng(0), NONE)
    assert np.array_equal(np.asarray(out), np.asarray(image))


@pytest.mark.parametrize("kind", KINDS)
def test_each_distortion_changes_the_image(kind: str) -> None:
    image = flag_like()
    mix = TRAIN_MIX.only(kind)
    assert getattr(mix, f"{kind}_prob") == 1.0
    assert all(getattr(mix, f"{k}_prob") == 0.0 for k in KINDS if k != kind)
    for seed in range(3):
        out = distort(image, np.random.default_rng(seed), mix)
        assert out.mode == "RGB"
        changed = out.size != image.size or not np.array_equal(np.asarray(out),
                                                               np.asarray(image))
        assert changed, f"{kind} (seed {seed}) left the image as it was"


def test_only_rejects_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="unknown distortion"):
        TRAIN_MIX.only("sepia")


def test_train_mix_covers_the_held_out_ranges_on_other_backgrounds() -> None:
    """Models train on distortions at least as strong as the held-out ones (what a photo does
    must not be new to them); held-out scores still measure unseen scenes and seeds."""
    assert TRAIN_MIX.rotate_deg >= TEST_MIX.rotate_deg
    assert TRAIN_MIX.perspective >= TEST_MIX.perspective
    assert TRAIN_MIX.jpeg_quality[0] <= TEST_MIX.jpeg_quality[0]
    assert TRAIN_MIX.crop_keep[0] <= TEST_MIX.crop_keep[0]
    assert TRAIN_MIX.paste_scale[0] <= TEST_MIX.paste_scale[0]
    assert TRAIN_MIX.blur_radius[1] >= TEST_MIX.blur_radius[1]
    assert TRAIN_MIX.noise_std[1] >= TEST_MIX.noise_std[1]
    for name in ("brightness", "contrast", "saturation", "hue", "color_cast"):
        assert getattr(TRAIN_MIX, name) >= getattr(TEST_MIX, name)
    assert (TRAIN_MIX.backgrounds, TEST_MIX.backgrounds) == ("train", "test")
    assert TRAIN_MIX != TEST_MIX


def test_train_and_test_backgrounds_are_disjoint() -> None:
    train, test = backgrounds("train"), backgrounds("test")
    assert len(train) >= 3 and len(test) >= 3
    assert all(b.mode == "RGB" and min(b.size) == augment.BACKGROUND_SIDE for b in train + test)
    assert not {digest(b) for b in train} & {digest(b) for b in test}
    assert not set(augment.PHOTOS["train"]) & set(augment.PHOTOS["test"])


def test_bundled_photos_load_offline() -> None:
    pytest.importorskip("skimage", reason="scikit-image (test extra) is not installed")
    photo = augment._bundled_photo("skimage", "data/astronaut.png")
    assert photo is not None and photo.mode == "RGB"
    train = backgrounds("train")
    assert len(train) > len(augment.PHOTOS["train"]) // 2  # most photos were found


def test_procedural_fallback_without_photo_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(augment, "_bundled_photo", lambda package, path: None)
    augment._backgrounds.cache_clear()
    try:
        train, test = backgrounds("train"), backgrounds("test")
        assert len(train) == len(test) == 8
        assert not {digest(b) for b in train} & {digest(b) for b in test}
        out = augmentations(flag_like(), 3, seed=3, mix=TEST_MIX)
        assert all(o.mode == "RGB" for o in out)
    finally:
        augment._backgrounds.cache_clear()


def test_bad_background_kind() -> None:
    with pytest.raises(ValueError):
        backgrounds("validation")  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [(3, 2), (1, 1), (9, 40)])
def test_tiny_images(size: tuple[int, int]) -> None:
    image = flag_like(size) if min(size) > 2 else Image.new("RGB", size, (200, 10, 10))
    for mix in (TRAIN_MIX, TEST_MIX, *(TEST_MIX.only(kind) for kind in KINDS)):
        out = distort(image, np.random.default_rng(11), mix)
        assert out.mode == "RGB" and min(out.size) >= 1


def test_png_with_alpha_and_palette(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (90, 60), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).ellipse((10, 10, 80, 50), fill=(20, 120, 40, 255))
    rgba.save(tmp_path / "logo.png")
    palette = flag_like((60, 40)).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    palette.info["transparency"] = 0
    palette.save(tmp_path / "flag.png", transparency=0)
    for name in ("logo.png", "flag.png"):
        with Image.open(tmp_path / name) as loaded:
            assert loaded.mode in ("RGBA", "P")
            plain = distort(loaded, np.random.default_rng(0), NONE)
            assert plain.mode == "RGB"
            for out in augmentations(loaded, 4, seed=5, mix=TEST_MIX):
                assert out.mode == "RGB"
    # the logo's transparent surroundings show white, not black, when nothing else applies
    with Image.open(tmp_path / "logo.png") as loaded:
        plain = distort(loaded, np.random.default_rng(0), NONE)
    assert plain.getpixel((1, 1)) == (255, 255, 255)
    assert plain.getpixel((45, 30)) == (20, 120, 40)


def test_pasted_object_keeps_its_scale_range() -> None:
    """The object covers 30-90 % of the background's side, so it is neither lost nor cropped."""
    red = Image.new("RGB", (100, 100), (255, 0, 0))
    plain_bg = [Image.new("RGB", (512, 512), (0, 0, 255))]
    rng = np.random.default_rng(4)
    for _ in range(10):
        out = np.asarray(distort(red, rng, TRAIN_MIX.only("paste"), plain_bg))
        mask = (out[..., 0] > 128) & (out[..., 2] < 128)
        ys, xs = np.nonzero(mask)
        height, width = out.shape[:2]
        side = max((np.ptp(xs) + 1) / width, (np.ptp(ys) + 1) / height)
        assert TRAIN_MIX.paste_scale[0] - 0.05 <= side <= TRAIN_MIX.paste_scale[1] + 0.05


def test_photos_made_in_processes_equal_those_made_here() -> None:
    """Forked workers make exactly the photos one process would, in order: each photo's
    generator is seeded by its index, so results do not depend on which worker made it."""
    source, pool = flag_like(), backgrounds("train")

    def photo(k: int) -> Image.Image:
        return distort(source, np.random.default_rng((3, k)), TRAIN_MIX, pool)

    count = augment.PARALLEL_MIN + 5
    here = [digest(p) for p in augment.in_processes(photo, count, workers=1)]
    forked = [digest(p) for p in augment.in_processes(photo, count, workers=2)]
    assert forked == here
    assert len(set(here)) == count


def test_a_failing_photo_task_raises_here() -> None:
    def broken(k: int) -> Image.Image:
        raise ValueError(f"photo {k} failed")

    with pytest.raises(ValueError, match="failed"):
        list(augment.in_processes(broken, augment.PARALLEL_MIN, workers=2))
