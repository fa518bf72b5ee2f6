#!/usr/bin/env bash
# The test suite in one command: install into .venv, then run pytest. CI runs exactly this.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
#
# The napari GUI tests need a display: on a machine without one, the suite runs under Xvfb
# (installed here with apt-get when missing and this user may; without it they are skipped,
# and pytest says why).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"
if [ -z "${DISPLAY:-}" ] && ! command -v xvfb-run > /dev/null; then
  packages="xvfb xauth libgl1 libegl1 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 libxcb-xfixes0 libxcb-shape0 libxcb-cursor0 libdbus-1-3 libfontconfig1"
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    echo "installing Xvfb for the napari GUI tests (apt-get)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages) \
      > /dev/null 2>&1 || echo "could not install Xvfb: the GUI tests will be skipped" >&2
  else
    echo "no display and no xvfb-run: the napari GUI tests will be skipped" >&2
  fi
fi
if [ -z "${DISPLAY:-}" ] && command -v xvfb-run > /dev/null; then
  exec xvfb-run -a -s "-screen 0 1280x1024x24" python -m pytest -q "$@"
fi
exec python -m pytest -q "$@"
