"""Write the nginx configuration that puts Access Atlas in front of the public.

Two forms, one source (this file), so the recipe and the local trial never drift apart:

``--site`` (the default)
    The site file for a server: ``deploy/nginx/access-atlas.conf`` is this output with the
    defaults below (``atlas.example.org``, Let's Encrypt certificate paths, gunicorn on
    ``unix:/run/access-atlas/gunicorn.sock``). It goes in ``/etc/nginx/sites-available/``
    (the ``http`` block of Debian's ``nginx.conf`` includes it): plain HTTP on port 80 only
    answers certificate challenges and redirects to HTTPS on 443.
``--local PREFIX``
    A whole ``nginx.conf`` for a trial on one machine (``scripts/serve.sh``, the proxy tests
    and benchmark): plain HTTP on ``--listen`` (default ``127.0.0.1:8080``), the pid file,
    logs, cache and temporary folders all inside ``PREFIX``, so nginx runs as any user with
    ``nginx -p PREFIX -c PREFIX/nginx.conf -e PREFIX/error.log``.

Both proxy every request to gunicorn through a local unix socket with the same limits:

- the request is read whole by nginx before gunicorn sees it (``proxy_request_buffering``),
  and the answer is taken from gunicorn at once and handed to the client at its own pace
  (``proxy_buffering``): a slow client holds an nginx connection (a few kB), never one of
  gunicorn's eight threads;
- short timeouts for a client that sends its headers or body slowly, or reads slowly;
- connections and requests per client address (``limit_conn``, ``limit_req``), answered
  ``429`` with ``Retry-After`` beyond them;
- the body limit of the app (:data:`viewmodel.serving.MAX_BODY_BYTES`);
- gzip for JSON, JavaScript, CSS and GeoJSON the app did not compress itself;
- a cache of what the app marks ``immutable`` (versioned layers and tiles, Dash's
  fingerprinted scripts, stamped assets), keeping the app's own headers;
- the app's security headers passed through untouched; the answers nginx makes itself
  (429, 413, 502-504) carry the same headers (:data:`viewmodel.serving.SECURITY_HEADERS`);
- client addresses truncated as the app truncates them (IPv4 /24, IPv6 /48,
  :func:`viewmodel.serving.anonymize_ip`) before they are logged or passed on: gunicorn
  gets only the truncated address, in ``X-Forwarded-For``.

Run ``python deploy/nginx_conf.py > deploy/nginx/access-atlas.conf`` after changing it
(``tests/test_proxy.py`` checks the two agree).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from viewmodel.serving import MAX_BODY_BYTES, RESOURCE_POLICY, SECURITY_HEADERS  # noqa: E402

#: Seconds gunicorn may take for a request (gunicorn.conf.py ``timeout``) plus a margin.
UPSTREAM_READ_S = 75
#: Gunicorn's keep-alive (gunicorn.conf.py ``keepalive``): nginx drops idle connections first.
GUNICORN_KEEPALIVE_S = 5

#: Requests per second and burst per client address, by kind of request.
LIMITS = {
    # pages, Dash's layout and callbacks, the health check
    "atlas_app": ("10r/s", 40),
    # layers, tiles, scripts and assets (a first view loads ~30, a map pan ~20 tiles)
    "atlas_files": ("50r/s", 200),
    # exports: each may render a map or a PDF (seconds of CPU), so a few a minute
    "atlas_exports": ("12r/m", 6),
}
#: Connections one client address may hold at once (a browser opens at most ~6).
CONNECTIONS_PER_ADDRESS = 32

_SITE_SOCKET = "/run/access-atlas/gunicorn.sock"
_SITE_CACHE = "/var/cache/nginx/access-atlas"
_SITE_LOGS = "/var/log/nginx"
_SITE_NAME = "atlas.example.org"
_SITE_ACME = "/var/www/letsencrypt"
_HSTS = "max-age=31536000"


@dataclass(frozen=True)
class Site:
    """Where things are for one configuration."""

    socket: str
    cache: str
    logs: str
    server_name: str = _SITE_NAME
    tls: bool = True
    certificate: str = f"/etc/letsencrypt/live/{_SITE_NAME}/fullchain.pem"
    certificate_key: str = f"/etc/letsencrypt/live/{_SITE_NAME}/privkey.pem"
    acme_root: str = _SITE_ACME
    listen: str = "127.0.0.1:8080"


#: Request headers sent to gunicorn: the truncated client address only, no other address.
PROXY_HEADERS = (
    ("Connection", '""'),
    ("Host", "$host"),
    ("X-Forwarded-For", "$atlas_client"),
    ("X-Forwarded-Proto", "$scheme"),
    ("X-Real-IP", '""'),
    ("Forwarded", '""'),
)


def _proxy_headers(indent: str, *extra: tuple[str, str]) -> str:
    return "\n".join(f"{indent}proxy_set_header {k} {v};" for k, v in (*PROXY_HEADERS, *extra))


def _header_lines(indent: str, *, tls: bool) -> str:
    headers = dict(SECURITY_HEADERS, **{"Content-Security-Policy": RESOURCE_POLICY})
    if tls:
        headers["Strict-Transport-Security"] = _HSTS
    return "\n".join(f'{indent}add_header {k} "{v}" always;' for k, v in headers.items())


def _error_location(name: str, status: int, text: str, *, tls: bool, retry: bool) -> str:
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{status} · Access Atlas</title></head><body><p>{text}</p></body></html>"
    )
    retry_line = '        add_header Retry-After "5" always;\n' if retry else ""
    return (
        f"    location @{name} {{\n"
        "        default_type text/html;\n"
        f"{_header_lines('        ', tls=tls)}\n"
        '        add_header Cache-Control "no-store" always;\n'
        f"{retry_line}"
        f"        return {status} '{body}';\n"
        "    }\n"
    )


def http_part(site: Site) -> str:
    """The ``http``-level part: zones, the cache, the log format, the upstream."""
    zones = "\n".join(
        f"limit_req_zone $binary_remote_addr zone={zone}:10m rate={rate};"
        for zone, (rate, _) in LIMITS.items()
    )
    return f"""\
# -- per-client-address limits (shared by nginx's workers) ---------------------------------
{zones}
limit_conn_zone $binary_remote_addr zone=atlas_conn:10m;

# -- cache of what the app marks immutable (versioned layers and tiles, scripts) -------------
proxy_cache_path {site.cache} levels=1:2 keys_zone=atlas_cache:10m
                 max_size=512m inactive=7d use_temp_path=off;

# Accept-Encoding reduced to two values: the cache keeps one gzip and one plain copy.
map $http_accept_encoding $atlas_gzip {{
    ~*gzip  gzip;
    default "";
}}

# The client address truncated as the app truncates it (IPv4 /24, IPv6 /48): the only form
# written to the access log or passed to the app.
map $remote_addr $atlas_client {{
    "~^(?<a>\\d+\\.\\d+\\.\\d+)\\.\\d+$"                                    $a.0;
    "~^(?<a>[0-9a-fA-F]{{1,4}}:[0-9a-fA-F]{{1,4}}:[0-9a-fA-F]{{1,4}}):"  $a::;
    "~^(?<a>[0-9a-fA-F]{{1,4}}:[0-9a-fA-F]{{1,4}})::"                  $a::;
    "~^(?<a>[0-9a-fA-F]{{1,4}})::"                                  $a::;
    default                                                     -;
}}

# The referring page without its query (it may hold an address someone looked up).
map $http_referer $atlas_referer {{
    ~^(?<r>[^?]*)  $r;
    default        -;
}}

# One JSON object per line, like the app's access log: no query string, no full address.
log_format atlas_json escape=json
    '{{"time":"$time_iso8601","type":"access","remote":"$atlas_client",'
    '"method":"$request_method","path":"$uri","status":$status,'
    '"bytes":$body_bytes_sent,"duration_s":$request_time,'
    '"upstream_s":"$upstream_response_time","cache":"$upstream_cache_status",'
    '"referer":"$atlas_referer","user_agent":"$http_user_agent"}}';

upstream access_atlas {{
    server unix:{site.socket} fail_timeout=0;
    keepalive 16;
    # shorter than gunicorn's keep-alive ({GUNICORN_KEEPALIVE_S} s): nginx drops an idle
    # connection before gunicorn closes it under a request
    keepalive_timeout {GUNICORN_KEEPALIVE_S - 1}s;
}}
"""


def server_part(site: Site) -> str:
    """The inside of the ``server`` block that serves the app."""
    limit = {
        zone: f"limit_req zone={zone} burst={burst} nodelay;" for zone, (_, burst) in LIMITS.items()
    }
    tls = site.tls
    hsts = f'    add_header Strict-Transport-Security "{_HSTS}" always;\n' if tls else ""
    errors = "".join(
        [
            _error_location(
                "atlas_busy",
                429,
                "Too many requests from your address at once. Wait a few seconds and reload.",
                tls=tls,
                retry=True,
            ),
            _error_location(
                "atlas_too_large", 413, "The request is too large.", tls=tls, retry=False
            ),
            _error_location(
                "atlas_down",
                503,
                "The map is restarting or too busy. Wait a few seconds and reload.",
                tls=tls,
                retry=True,
            ),
        ]
    )
    return f"""\
    server_tokens off;
    access_log {site.logs}/access-atlas.access.log atlas_json;
{hsts}
    # -- slow clients: short timeouts, read whole before the app sees it -------------------
    client_header_timeout 10s;      # the whole request line and headers
    client_body_timeout 10s;        # between two reads of the body
    send_timeout 20s;               # between two writes of the answer
    keepalive_timeout 15s;
    keepalive_requests 1000;
    reset_timedout_connection on;
    client_header_buffer_size 1k;
    large_client_header_buffers 4 8k;
    client_max_body_size {MAX_BODY_BYTES // 1024}k;  # viewmodel.serving.MAX_BODY_BYTES
    client_body_buffer_size 128k;   # callback bodies are a few kB: kept in memory

    # -- per client address ----------------------------------------------------------------
    limit_conn atlas_conn {CONNECTIONS_PER_ADDRESS};
    limit_conn_status 429;
    limit_req_status 429;
    limit_conn_log_level info;      # refusals are in the access log (429), without the
    limit_req_log_level info;       # full address the error log would write

    # -- compression of what the app left plain ------------------------------------------
    gzip on;
    gzip_vary on;
    gzip_proxied any;
    gzip_comp_level 5;
    gzip_min_length 1024;
    gzip_types application/json application/javascript text/javascript text/css
               application/geo+json image/svg+xml text/plain;

    # -- to gunicorn ---------------------------------------------------------------------
    proxy_http_version 1.1;
{_proxy_headers("    ")}
    proxy_request_buffering on;
    proxy_buffering on;
    proxy_buffer_size 16k;
    proxy_buffers 32 16k;
    proxy_busy_buffers_size 64k;
    proxy_connect_timeout 5s;
    proxy_send_timeout 30s;
    proxy_read_timeout {UPSTREAM_READ_S}s;
    proxy_intercept_errors off;     # the app's own 404/422/500 answers pass through

    error_page 429 @atlas_busy;
    error_page 413 @atlas_too_large;
    error_page 502 503 504 @atlas_down;

    location / {{
        {limit["atlas_app"]}
        proxy_pass http://access_atlas;
    }}

    location /atlas/export/ {{
        {limit["atlas_exports"]}
        {limit["atlas_app"]}
        proxy_pass http://access_atlas;
    }}

    # Versioned files: kept by nginx as long as the app's Cache-Control says (a year for the
    # current build's ?v=, Dash's fingerprinted scripts and ?m= assets; others not at all).
    location ~ ^/(atlas/layers|atlas/tiles|_dash-component-suites|assets)/ {{
        {limit["atlas_files"]}
        proxy_cache atlas_cache;
        proxy_cache_key "$request_uri|$atlas_gzip";
        # (proxy_set_header here replaces the server's list: all of it is repeated)
{_proxy_headers("        ", ("Accept-Encoding", "$atlas_gzip"))}
        proxy_ignore_headers Vary;  # the key holds the one encoding that matters
        proxy_cache_lock on;
        proxy_cache_use_stale updating;
        proxy_pass http://access_atlas;
    }}

{errors}"""


def site_config(site: Site) -> str:
    """The site file (``http`` context): HTTPS on 443, port 80 redirecting to it."""
    return f"""\
# Access Atlas behind nginx (generated by deploy/nginx_conf.py; see the README's
# "In front of the public" section). Edit server_name and the certificate paths, or
# generate it: python deploy/nginx_conf.py --server-name atlas.example.org > this file.

{http_part(site)}
server {{
    listen 80;
    listen [::]:80;
    server_name {site.server_name};
    server_tokens off;
    client_header_timeout 10s;
    location /.well-known/acme-challenge/ {{
        root {site.acme_root};
    }}
    location / {{
        return 301 https://$host$request_uri;
    }}
}}

server {{
    listen 443 ssl http2;
    listen [::]:443 ssl http2;
    server_name {site.server_name};

    # -- TLS: certificates from the operator (certbot --webroot -w {site.acme_root}) ------
    ssl_certificate {site.certificate};
    ssl_certificate_key {site.certificate_key};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers off;
    ssl_session_cache shared:atlas_tls:10m;
    ssl_session_timeout 1d;
    ssl_session_tickets off;

{server_part(site)}}}
"""


def local_config(prefix: Path, *, socket: str, listen: str, user: str | None = None) -> str:
    """A whole ``nginx.conf`` for a trial: plain HTTP on ``listen``, everything in ``prefix``."""
    prefix = Path(prefix).resolve()
    site = Site(
        socket=socket, cache=str(prefix / "cache"), logs=str(prefix), tls=False, listen=listen
    )
    temps = "\n".join(
        f"    {kind}_temp_path {prefix / 'temp' / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user_line = f"user {user};\n" if user else ""
    http = "\n".join(f"    {line}" if line else "" for line in http_part(site).splitlines())
    return f"""\
# Access Atlas local trial (generated by deploy/nginx_conf.py --local; scripts/serve.sh).
# Plain HTTP on {listen}; the limits are those of deploy/nginx/access-atlas.conf.
{user_line}worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
daemon off;

events {{
    worker_connections 1024;
}}

http {{
    default_type application/octet-stream;
{temps}
{http}
    server {{
        listen {listen};
        server_name localhost;
{_indent(server_part(site))}    }}
}}
"""


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" if line else "" for line in text.splitlines()) + "\n"


def site_defaults() -> Site:
    """The site checked in as ``deploy/nginx/access-atlas.conf``."""
    return Site(socket=_SITE_SOCKET, cache=_SITE_CACHE, logs=_SITE_LOGS)


def main(argv: list[str] | None = None) -> int:
    """Print a configuration (see the module's docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--local", metavar="PREFIX", help="a whole nginx.conf for a trial")
    parser.add_argument("--listen", default="127.0.0.1:8080", help="(--local) address:port")
    parser.add_argument("--socket", default=_SITE_SOCKET, help="gunicorn's unix socket")
    parser.add_argument("--user", help="(--local, as root) the user of nginx's workers")
    parser.add_argument("--server-name", default=_SITE_NAME)
    parser.add_argument("--certificate", help="default: Let's Encrypt's path for the name")
    parser.add_argument("--certificate-key", help="default: Let's Encrypt's path for the name")
    args = parser.parse_args(argv)
    if args.local:
        sys.stdout.write(
            local_config(Path(args.local), socket=args.socket, listen=args.listen, user=args.user)
        )
        return 0
    live = f"/etc/letsencrypt/live/{args.server_name}"
    site = Site(
        socket=args.socket,
        cache=_SITE_CACHE,
        logs=_SITE_LOGS,
        server_name=args.server_name,
        certificate=args.certificate or f"{live}/fullchain.pem",
        certificate_key=args.certificate_key or f"{live}/privkey.pem",
    )
    sys.stdout.write(site_config(site))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
