"""Encoders from local Hugging Face model folders (nothing is ever downloaded).

- ``hf:/path``: any transformers text model, mean-pooled (how sentence-transformers models
  such as MiniLM are meant to be pooled);
- ``hf-clip:/path``: the image tower of a CLIP checkpoint (``CLIPModel.get_image_features``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import torch

from kqa.encode import Encoder, EncoderSpec, TextEncoder, TokenStates
from kqa.errors import KqaError
from kqa.hookspecs import hookimpl
from kqa.images import open_image


def _model_folder(path: str | Path) -> Path:
    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise KqaError(f"{folder} is not a Hugging Face model folder (no config.json)")
    return folder


def _folder_version(folder: Path) -> str:
    """A version that changes when the weights change: size and mtime of the weight files."""
    weights = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin"))
    return "+".join(f"{p.name}:{p.stat().st_size}" for p in weights) or "unknown"


class HFTextEncoder(TextEncoder):
    """Mean-pooled last hidden states of a local transformers model."""

    def __init__(self, path: str | Path, name: str | None = None, version: str | None = None,
                 max_length: int = 256) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        folder = _model_folder(path)
        self.name = name or f"hf:{folder}"
        self.version = version or _folder_version(folder)
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(folder), local_files_only=True).eval().to(self.device)
        self.dim = int(self.model.config.hidden_size)
        self.max_length = max_length

    @torch.inference_mode()
    def encode_tokens(self, texts: Sequence[str]) -> TokenStates:
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                               return_offsets_mapping=True, return_tensors="pt")
        offsets = [[(int(a), int(b)) for a, b in row] for row in batch.pop("offset_mapping").tolist()]
        batch = {k: v.to(self.device) for k, v in batch.items()}
        states = self.model(**batch).last_hidden_state.float()
        mask = batch["attention_mask"]
        summed = (states * mask.unsqueeze(-1)).sum(1)
        pooled = torch.nn.functional.normalize(summed / mask.sum(1, keepdim=True).clamp(min=1), dim=-1)
        return TokenStates(states, mask, offsets, pooled)

    def encode_batch(self, items: Sequence[Any]) -> np.ndarray:
        return self.encode_tokens([str(t) for t in items]).pooled.cpu().numpy().astype(np.float32)


class HFClipImageEncoder(Encoder):
    """The image side of a local CLIP checkpoint."""

    modality = "image"
    batch_size = 16

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        from transformers import CLIPModel

        folder = _model_folder(path)
        self.name = f"hf-clip:{folder}"
        self.version = _folder_version(folder)
        self.model = CLIPModel.from_pretrained(str(folder), local_files_only=True).eval().to(self.device)
        self.dim = int(self.model.config.projection_dim)
        self.size = int(self.model.config.vision_config.image_size)
        self.mean, self.std = self._normalisation(folder)

    @staticmethod
    def _normalisation(folder: Path) -> tuple[list[float], list[float]]:
        import json

        config = folder / "preprocessor_config.json"
        if config.is_file():
            data = json.loads(config.read_text(encoding="utf-8"))
            if "image_mean" in data and "image_std" in data:
                return data["image_mean"], data["image_std"]
        return [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]

    @torch.inference_mode()
    def encode_batch(self, items: Sequence[Any]) -> np.ndarray:
        pixels = torch.stack([self._pixels(open_image(item)) for item in items]).to(self.device)
        output = self.model.get_image_features(pixel_values=pixels)
        features = output if isinstance(output, torch.Tensor) else output.pooler_output
        return torch.nn.functional.normalize(features.float(), dim=-1).cpu().numpy()

    def _pixels(self, image: Any) -> torch.Tensor:
        from PIL import Image

        array = np.asarray(image.resize((self.size, self.size), Image.BICUBIC), dtype=np.float32) / 255.0
        tensor = torch.from_numpy(array).permute(2, 0, 1)
        mean = torch.tensor(self.mean).view(3, 1, 1)
        std = torch.tensor(self.std).view(3, 1, 1)
        return (tensor - mean) / std


@hookimpl
def register_encoders(register):  # type: ignore[no-untyped-def]
    register(EncoderSpec("hf", "text", HFTextEncoder, "any local Hugging Face text model (hf:/path)",
                         takes_path=True))
    register(EncoderSpec("hf-clip", "image", HFClipImageEncoder,
                         "image tower of a local CLIP checkpoint (hf-clip:/path)", takes_path=True))
