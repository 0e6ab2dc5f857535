"""Modality encoders (one plugin module per model family)."""
