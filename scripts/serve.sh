#!/usr/bin/env bash
# Run the dashboard as in production, on one machine: nginx in front (the limits of
# deploy/nginx/access-atlas.conf, plain HTTP on http://127.0.0.1:${PORT:-8080}) and gunicorn
# behind it on a unix socket. Installs, builds the demo region if it is missing (as run.sh),
# writes the nginx configuration into the runtime folder (${ACCESS_ATLAS_RUNTIME:-artifacts/serve}:
# nginx.conf, error.log, access-atlas.access.log, nginx.pid, gunicorn's logs and socket,
# nginx's cache and temporary files), starts both and stops both on Ctrl-C or SIGTERM.
# Runs as any user: nothing is written outside the runtime folder and the repository.
# Extra arguments go to gunicorn. Needs nginx (Debian: apt-get install nginx).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/access-atlas build geodata/configs/demo.yaml --if-missing

NGINX="$(command -v nginx || true)"
[ -z "$NGINX" ] && [ -x /usr/sbin/nginx ] && NGINX=/usr/sbin/nginx
if [ -z "$NGINX" ]; then
  echo "serve: error: nginx is not installed; install it (Debian: apt-get install nginx) or run scripts/setup.sh --dev" >&2
  exit 2
fi

RUN="${ACCESS_ATLAS_RUNTIME:-artifacts/serve}"
mkdir -p "$RUN/temp" "$RUN/cache"
RUN="$(cd "$RUN" && pwd)"
SOCK="$RUN/gunicorn.sock"
LISTEN="127.0.0.1:${PORT:-8080}"
user_args=()
# As root nginx would start its workers as "nobody", who may not reach the runtime folder:
# for this local trial they run as the user who started it.
[ "$(id -u)" -eq 0 ] && user_args=(--user "$(id -un)")
.venv/bin/python deploy/nginx_conf.py --local "$RUN" --socket "$SOCK" --listen "$LISTEN" \
  "${user_args[@]}" >"$RUN/nginx.conf"
"$NGINX" -q -t -p "$RUN" -c "$RUN/nginx.conf" -e "$RUN/error.log"

gunicorn_pid=""
nginx_pid=""
stop() {
  trap - INT TERM EXIT
  [ -n "$nginx_pid" ] && kill -TERM "$nginx_pid" 2>/dev/null || true
  [ -n "$gunicorn_pid" ] && kill -TERM "$gunicorn_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  echo "serve: stopped nginx and gunicorn" >&2
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ACCESS_ATLAS_BIND="unix:$SOCK" .venv/bin/gunicorn app:server -c gunicorn.conf.py \
  --pid "$RUN/gunicorn.pid" "$@" >>"$RUN/gunicorn.access.log" 2>>"$RUN/gunicorn.error.log" &
gunicorn_pid=$!
"$NGINX" -p "$RUN" -c "$RUN/nginx.conf" -e "$RUN/error.log" &
nginx_pid=$!

# Wait (at most 60 s) until the app answers through nginx.
.venv/bin/python - "$LISTEN" <<'EOF' || { echo "serve: error: the app did not answer; see $RUN/gunicorn.error.log and $RUN/error.log" >&2; exit 1; }
import sys, time, urllib.request
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(f"http://{sys.argv[1]}/healthz", timeout=2) as r:
            if r.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.3)
sys.exit(1)
EOF
echo "Access Atlas: http://$LISTEN (nginx -> gunicorn on unix:$SOCK; logs in $RUN; Ctrl-C stops both)" >&2

# Run until either stops (or Ctrl-C / SIGTERM), then stop the other.
status=0
wait -n "$gunicorn_pid" "$nginx_pid" || status=$?
echo "serve: $( kill -0 "$nginx_pid" 2>/dev/null && echo gunicorn || echo nginx ) exited" >&2
exit "$status"
