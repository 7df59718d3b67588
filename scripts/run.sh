#!/usr/bin/env bash
# Run the dashboard on the built-in (fictional) region: install, build the bundle if it is
# missing, then serve with gunicorn on http://127.0.0.1:${PORT:-8050}.
# Extra arguments go to gunicorn. ACCESS_ATLAS_REGION picks another built region.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/access-atlas build geodata/configs/demo.yaml --if-missing
echo "Access Atlas: http://127.0.0.1:${PORT:-8050}" >&2
exec .venv/bin/gunicorn app:server -c gunicorn.conf.py "$@"
