"""Export a network to TorchScript and ONNX, and measure how closely each reproduces it.

Both exports take any batch size and image size (ONNX: dynamic axes; TorchScript: a trace of
convolutions, whose shapes follow the input). Exported networks take normalised images, as
the PyTorch network does; the normalisation travels in ``export.json`` beside them.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch

FORMATS = ("torchscript", "onnx")
ONNX_HINT = "ONNX export needs onnx, onnxscript and onnxruntime: pip install 'srbio[export]'"


def to_torchscript(net: torch.nn.Module, path: str | os.PathLike, example: torch.Tensor) -> None:
    """Trace ``net`` on ``example`` and save it (``torch.jit.load`` reads it, also from C++)."""
    with torch.no_grad(), warnings.catch_warnings():
        # input-size checks (RLFN) become constants of the trace; the shapes still follow
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(net.eval(), example, check_trace=False)
    traced.save(str(path))


def to_onnx(net: torch.nn.Module, path: str | os.PathLike, example: torch.Tensor,
            min_side: int) -> None:
    """Export ``net`` to one ONNX file with dynamic batch, (depth,) height and width."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise RuntimeError(ONNX_HINT) from None
    # the exporter warns for each torchvision operator it cannot register: srbio uses none
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    side = {"min": max(2, min_side), "max": 1 << 16}
    axes = {0: torch.export.Dim("batch", min=1, max=1 << 12),
            example.ndim - 2: torch.export.Dim("height", **side),
            example.ndim - 1: torch.export.Dim("width", **side)}
    if example.ndim == 5:
        axes[2] = torch.export.Dim("depth", min=1, max=1 << 12)
    shapes = {"x": axes}
    torch.onnx.export(net.eval(), (example,), str(path), input_names=["lr"],
                      output_names=["sr"], dynamic_shapes=shapes, dynamo=True,
                      external_data=False, verbose=False)


def run_exported(path: str | os.PathLike, fmt: str, x: torch.Tensor) -> np.ndarray:
    """Run an exported network of format ``fmt`` on ``x`` (CPU)."""
    if fmt == "torchscript":
        loaded = torch.jit.load(str(path), map_location="cpu")
        with torch.no_grad():
            return loaded(x).numpy()
    try:
        import onnxruntime
    except ImportError:
        raise RuntimeError(ONNX_HINT) from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"lr": x.numpy()})[0]


def export(net: torch.nn.Module, path: str | os.PathLike, fmt: str, *, min_side: int = 1,
           seed: int = 0, dims: int = 2) -> tuple[float, list[int]]:
    """Export ``net`` as ``fmt`` to ``path`` and check it against PyTorch.

    The check runs the exported file on a random input of another shape than the traced
    example (two images, odd sizes; volumes of 5 planes for ``dims`` 3), so a shape frozen by
    the export would show.

    Returns
    -------
    (float, list of int)
        The largest absolute difference to the PyTorch output, and the test input's shape.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r} (available: {', '.join(FORMATS)})")
    side = max(24, min_side)
    gen = torch.Generator().manual_seed(seed)
    depth = ([6], [5]) if dims == 3 else ([], [])  # volumes: planes of another number too
    example = torch.rand(1, 1, *depth[0], side, side + 8, generator=gen)
    test = torch.rand(2, 1, *depth[1], side + 5, side + 13, generator=gen)
    net = net.cpu().eval()
    if fmt == "torchscript":
        to_torchscript(net, path, example)
    else:
        to_onnx(net, path, example, min_side)
    with torch.no_grad():
        reference = net(test).numpy()
    got = run_exported(Path(path), fmt, test)
    if got.shape != reference.shape:
        raise RuntimeError(f"{path}: the exported network gives shape {got.shape} for input "
                           f"{tuple(test.shape)}, PyTorch {reference.shape}")
    return float(np.abs(got - reference).max()), list(test.shape)
