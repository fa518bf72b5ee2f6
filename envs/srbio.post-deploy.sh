#!/usr/bin/env bash
# Run by Snakemake inside the new conda environment (`--sdm conda`), from the workflow's
# working directory (this checkout): install srbio itself, its dependencies come from
# srbio.yaml. Editable, so the environment follows the checkout it was created from.
set -euo pipefail
python -m pip install --no-deps --no-build-isolation -e .
