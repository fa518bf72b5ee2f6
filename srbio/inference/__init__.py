"""Predict arrays and chunked volumes with a trained model."""

from srbio.inference.model import load_model
from srbio.inference.predict import TiledPredictor, predict_to_zarr, resolve_device

__all__ = ["TiledPredictor", "load_model", "predict_to_zarr", "resolve_device"]
