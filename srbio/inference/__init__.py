"""Predict arrays and chunked volumes with a trained model."""

from srbio.inference.model import load_model
from srbio.inference.predict import (
    Chunk,
    NetworkRunner,
    TiledPredictor,
    halo_for,
    receptive_field,
    resolve_device,
)

__all__ = ["Chunk", "NetworkRunner", "TiledPredictor", "halo_for", "load_model",
           "receptive_field", "resolve_device"]
