#!/usr/bin/env bash
# Create (or update) the project's virtual environment in .venv with everything srbio needs.
# torch is pinned through a constraints file so pip never pulls a multi-GB CUDA build by
# accident: override with e.g. TORCH_SPEC="torch==2.5.1" (or a CUDA wheel) if you want another.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "srbio needs Python >= 3.11 (found $("$PYTHON" --version))" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
echo "$TORCH_SPEC" > "$constraints"
.venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "is ignored" || true
.venv/bin/python -m pip install --quiet -c "$constraints" "$TORCH_SPEC" -e ".[test]" 2>&1 \
  | grep -v "is ignored: it is neither a file nor a directory" || true
.venv/bin/python -c "import srbio, torch, snakemake; print('srbio', srbio.__version__, '| torch', torch.__version__)"
