#!/usr/bin/env bash
# Create (or update) the project's virtual environment in .venv with everything srbio needs.
#
# torch is pinned through a constraints file (TORCH_SPEC, default torch==2.13.0) so pip never
# resolves a newer, different build. Which build that pin installs depends on where pip finds
# it: from PyPI, torch 2.13.0 for Linux x86_64 is the CUDA build (several GB of nvidia
# packages); a machine whose pip finds a CPU wheel first (like this project's CI) gets that.
# To choose explicitly, set TORCH_INDEX_URL (off by default):
#   TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu    bash scripts/install.sh  # CPU only
#   TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128  bash scripts/install.sh  # CUDA 12.8
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
TORCH_INDEX_URL="${TORCH_INDEX_URL:-}"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "srbio needs Python >= 3.11 (found $("$PYTHON" --version))" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
echo "$TORCH_SPEC" > "$constraints"
quiet() { grep -v "is ignored: it is neither a file nor a directory\|is ignored" || true; }
.venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | quiet
if [ -n "$TORCH_INDEX_URL" ]; then  # torch alone from the chosen index, the rest from the default
  .venv/bin/python -m pip install --quiet --index-url "$TORCH_INDEX_URL" "$TORCH_SPEC" 2>&1 | quiet
fi
.venv/bin/python -m pip install --quiet -c "$constraints" "$TORCH_SPEC" -e ".[test]" 2>&1 | quiet
.venv/bin/python -c "import srbio, torch, snakemake; print('srbio', srbio.__version__, '| torch', torch.__version__, '| CUDA build:', torch.version.cuda or 'none')"
