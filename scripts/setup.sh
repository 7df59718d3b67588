#!/usr/bin/env bash
# Install what Access Atlas needs into .venv (idempotent). Used by run.sh and test.sh.
#   scripts/setup.sh            the app and the ETL
#   scripts/setup.sh --dev      plus tests, lint, browser tests (Chromium from Debian)
#                               and the proxy tests (nginx from Debian)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"
stamp=".venv/.installed${extras:+-dev}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".${extras}"
  touch "$stamp"
fi
if [ "${1:-}" = "--dev" ] && [ ! -x /usr/bin/chromium ]; then
  echo "setup: installing Chromium for the browser tests (apt-get)" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium poppler-utils >/dev/null
fi
if [ "${1:-}" = "--dev" ] && [ ! -x /usr/sbin/nginx ] && ! command -v nginx >/dev/null; then
  echo "setup: installing nginx for the proxy tests and scripts/serve.sh (apt-get)" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nginx >/dev/null
fi
