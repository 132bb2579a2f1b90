#!/usr/bin/env bash
# Set up everything the whole test suite needs on a fresh Debian machine, then run it.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh tests/test_client.py -x`).
set -euo pipefail
cd "$(dirname "$0")/.."

# The browser tests (tests/browser) drive Debian's Chromium: Playwright cannot download one here.
if [ ! -x /usr/bin/chromium ]; then
    sudo_=""
    [ "$(id -u)" -eq 0 ] || sudo_="sudo"
    $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
fi

python3 -m venv .venv
# The diffusers engine's tests run on the CPU: take torch's CPU build first (2.13.0 is the one
# this project's machines hold locally), so no package pulls a multi-GB CUDA build.
.venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e '.[test,diffusers]'
exec .venv/bin/python -m pytest -q "$@"
