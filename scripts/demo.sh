#!/usr/bin/env bash
# The whole demo in one command: install into .venv, then run the workflow on config.yaml
# (the bundled real lattice light-sheet sample). Ends with results/report.md.
# Extra arguments go to snakemake, e.g. `bash scripts/demo.sh --cores 8` or `... -n`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"
snakemake --cores "${CORES:-2}" "$@"
echo
echo "Done. Open the report: results/report.md (pictures beside it in results/)."
