"""``python -m srbio`` with the benchmark-only ``nearest`` network registered (not a benchmark).

    python benchmarks/_srbio_cli.py predict --model M --input I --output O.ome.zarr ...

Registration runs at import, so spawned ``--workers`` processes (which import this file as
their main module) know the network too.
"""

from _predict_common import register_nearest

register_nearest()

if __name__ == "__main__":
    from srbio.cli import main

    raise SystemExit(main())
