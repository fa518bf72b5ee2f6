"""Opening a store larger than memory budgets allow reads only what is shown."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from srbio.stages.inspect import write_layer

pytestmark = [pytest.mark.napari, pytest.mark.slow]

# run in a fresh process: the resident memory of this test session would hide the difference
VIEW = """
import json, sys, time
import napari, psutil
from qtpy.QtWidgets import QApplication

def settle(seconds):
    end = time.time() + seconds
    while time.time() < end:
        QApplication.processEvents()
        time.sleep(0.02)

viewer = napari.Viewer(show=True)
viewer.window.resize(1200, 900)
settle(2)
me = psutil.Process()
before = me.memory_info().rss
[layer] = viewer.open(sys.argv[1], plugin="srbio")
settle(3)
viewer.screenshot(canvas_only=False)
opened = me.memory_info().rss
viewer.dims.set_current_step(0, 40)
viewer.camera.zoom *= 8  # closer: napari reads finer levels of the visible part only
settle(3)
viewer.screenshot(canvas_only=False)
moved = me.memory_info().rss
print(json.dumps({"before": before, "opened": opened, "moved": moved,
                  "levels": len(layer.data), "nbytes": int(layer.data[0].nbytes)}))
"""


def test_opening_a_4_gib_ome_zarr_raises_rss_by_less_than_200_mb(tmp_path, sample):
    da = pytest.importorskip("dask.array")
    image, spacing = sample
    plane = np.tile(image[20], (26, 11))[:8192, :4096]  # real structures, 32 Mpx a plane
    data = da.broadcast_to(da.from_array(plane, chunks=(1024, 1024))[None],
                           (64, 8192, 4096)).rechunk((1, 1024, 1024))
    store = write_layer(tmp_path / "big.ome.zarr", data, spacing=spacing,
                        translation=(0.0, 0.0, 0.0), chunk=1024)
    out = subprocess.run([sys.executable, "-c", VIEW, str(store)], capture_output=True,
                         text=True, timeout=300, env=os.environ.copy())
    assert out.returncode == 0, out.stderr[-2000:]
    rss = json.loads(out.stdout.strip().splitlines()[-1])
    assert rss["nbytes"] >= 4 * 2 ** 30 and rss["levels"] >= 4
    mb = {k: (rss[k] - rss["before"]) / 2 ** 20 for k in ("opened", "moved")}
    print(f"RSS increase: {mb['opened']:.0f} MB opened, {mb['moved']:.0f} MB after a zoom")
    assert mb["opened"] < 200 and mb["moved"] < 200, mb
