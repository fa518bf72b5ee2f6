#!/usr/bin/env bash
# The test suite in one command: install into .venv, then run pytest. CI runs exactly this.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"
python -m pytest -q "$@"
