#!/usr/bin/env bash
# Run the whole test suite (unit, CLI, real-data and browser tests) and the linter.
# Installs everything first, Chromium included. Extra arguments go to pytest,
# e.g. scripts/test.sh -m slow for the benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -n 2 --dist loadgroup "$@"
