"""Run a bioimage.io model package with bioimageio.core: its test, and predictions to compare.

bioimageio.core is the reference runtime of the format: what it computes from a package is
what every bioimage.io consumer should. The export stage runs :func:`core_test` on each
package it writes; the tests compare :func:`predict_package` with srbio's own prediction.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def _quiet() -> None:
    """Keep bioimageio's log messages (loguru, to stderr) out of srbio's log."""
    from loguru import logger

    logger.disable("bioimageio")


def reproduce(descr: Any, weight_format: str) -> float:
    """Largest |bioimageio.core output − the package's test output| with ``weight_format``.

    The test input goes through the package's preprocessing, network and postprocessing, as
    ``bioimageio test`` does (no padding or cropping of halos).
    """
    _quiet()
    from bioimageio.core import create_prediction_pipeline
    from bioimageio.core.digest_spec import get_test_input_sample, get_test_output_sample

    expected = get_test_output_sample(descr)
    with create_prediction_pipeline(descr, weight_format=weight_format,
                                    devices=["cpu"]) as pipeline:
        got = pipeline.predict_sample_without_blocking(
            get_test_input_sample(descr), skip_input_padding=True, skip_output_cropping=True)
    return max(float(np.abs(got.members[m].data.to_numpy().astype(np.float64)
                            - t.data.to_numpy().astype(np.float64)).max())
               for m, t in expected.members.items())


def core_test(descr: Any) -> tuple[str, list[str]]:
    """Run ``bioimageio.core.test_model`` on a loaded description: (status, errors).

    It reproduces the test output from the test input with every weights format (within the
    package's reproducibility tolerance) and runs each at several batch and input sizes.
    """
    _quiet()
    from bioimageio.core import test_model

    summary = test_model(descr)
    errors = [f"{'.'.join(str(p) for p in e.loc) or d.name}: {e.msg}"
              for d in summary.details for e in d.errors]
    return str(summary.status), errors


def predict_package(source: str | os.PathLike | Any, image: np.ndarray, *,
                    weight_format: str | None = None, blocksize: int | None = None
                    ) -> np.ndarray:
    """Predict ``image`` (batch, channel, [z,] y, x) with a package through bioimageio.core.

    ``blocksize`` (bioimageio.core's ``blocksize_parameter`` n): predict in blocks of the
    package's input size min + n·step, with its halo; None: the whole image at once (its
    halo padded at the borders, then cropped).
    """
    _quiet()
    from bioimageio.core import create_prediction_pipeline, load_description, predict

    descr = source if not isinstance(source, str | os.PathLike) else load_description(
        source, perform_io_checks=False)
    pipeline = create_prediction_pipeline(descr, weight_format=weight_format, devices=["cpu"])
    tensor_in = descr.inputs[0].id
    out = predict(model=pipeline, inputs={tensor_in: np.asarray(image)},
                  blocksize_parameter=blocksize)
    return out.members[descr.outputs[0].id].data.to_numpy()
