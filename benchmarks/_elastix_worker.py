"""itk-elastix worker for benchmarks/registration.py: numpy + itk only.

Keeps ITK (itk-elastix) apart from SimpleITK, which the benchmark process has loaded.

    python benchmarks/_elastix_worker.py JOB.npz   # writes out.npz beside it
"""

import os
import sys
import time
from pathlib import Path

import numpy as np


def main(job: Path) -> None:
    """Register the job's pair with elastix's default maps; write mapped points and seconds."""
    import itk

    os.chdir(job.parent)  # transformix writes deformationField.nii into the working directory
    d = np.load(job)
    spacing, lr_spacing = tuple(d["spacing"]), tuple(d["lr_spacing"])

    def image(a, sp, dtype=np.float32):
        img = itk.image_from_array(np.ascontiguousarray(a.astype(dtype)))  # a copy, not a view
        img.SetSpacing(tuple(float(s) for s in sp[::-1]))
        return img

    fixed, moving = image(d["hr"], spacing), image(d["lr"], lr_spacing)
    params = itk.ParameterObject.New()
    for stage in [str(s) for s in d["chain"]]:
        pm = params.GetDefaultParameterMap(stage)
        if stage == "bspline":
            pm["FinalGridSpacingInPhysicalUnits"] = ["8.0"]
        pm["ErodeMask"] = ["false"]
        params.AddParameterMap(pm)
    t0 = time.perf_counter()
    _, result = itk.elastix_registration_method(
        fixed, moving, parameter_object=params,
        fixed_mask=image(d["fixed_mask"], spacing, np.uint8),
        moving_mask=image(d["moving_mask"], lr_spacing, np.uint8), log_to_console=False)
    # threads come from ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS: passing number_of_threads
    # crashes elastix's B-spline stage (itk-elastix 0.25.4)
    seconds = time.perf_counter() - t0
    field = itk.transformix_deformation_field(moving, result)  # on the fixed image grid
    disp = np.asarray(field)  # (..., ndim), x/y(/z) order, µm
    points = d["points"]
    idx = np.rint(points / np.asarray(spacing)).astype(int)
    moved = points + disp[tuple(idx.T)][:, ::-1]
    np.savez(job.with_name("out.npz"), moved=moved, seconds=seconds)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
