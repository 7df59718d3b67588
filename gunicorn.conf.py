"""Gunicorn settings for serving Access Atlas in production: ``gunicorn app:server``.

Gunicorn reads this file from the working folder (the repository root); every value can be
overridden on the command line or through the environment:

``ACCESS_ATLAS_BIND``
    Address to listen on (default ``127.0.0.1:$PORT``, ``PORT`` default 8050). Put a reverse
    proxy (TLS, rate limits) in front; do not expose gunicorn directly.
``WEB_CONCURRENCY``
    Worker processes (default 2: one per core of a small server). Each worker holds its own
    copy of the region data it has opened (~0.3 GB for a county), so add workers with memory.
``ACCESS_ATLAS_THREADS``
    Threads per worker (default 4, ``gthread`` workers): callbacks are short numpy work, and
    threads let one worker serve layer files while another request computes.
``ACCESS_ATLAS_TIMEOUT``
    Seconds a worker may stay silent before the master kills and replaces it (default 60;
    the first view of a large region builds its layers once, in a few seconds).
``ACCESS_ATLAS_PRELOAD``
    ``1`` (default): import the app once in the master and fork workers from it, so a worker
    that dies is replaced in a fraction of a second and the imported code is shared. The
    master never opens a bundle or starts a thread (``ACCESS_ATLAS_WARM`` is held off until
    each worker has forked, then every worker warms its own caches): nothing is forked
    holding a lock or a thread pool. ``0`` imports the app in every worker. The master's
    objects are frozen out of the garbage collector before each fork, and each worker's
    warmed caches after its warm-up (``gc.freeze``): a full collection then scans only what
    requests create, instead of stopping all the worker's threads for 0.1-0.3 s. A
    collection that still takes over 0.1 s is logged as a warning.

Logs are JSON, one object per line (:class:`viewmodel.serving.JsonFormatter`): the access log on
stdout (client addresses truncated, address look-ups and map centres left out of query
strings), the error log and the app's own log on stderr, tracebacks included there and
never sent to a browser.
"""

from __future__ import annotations

import gc
import os
import threading
import time

# -- sockets and workers --------------------------------------------------------------------
bind = os.environ.get("ACCESS_ATLAS_BIND", f"127.0.0.1:{os.environ.get('PORT', '8050')}")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("ACCESS_ATLAS_THREADS", "4"))
backlog = 256
proc_name = "access-atlas"

# -- timeouts ------------------------------------------------------------------------------
timeout = int(os.environ.get("ACCESS_ATLAS_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5

# -- robustness ----------------------------------------------------------------------------
# Workers are not recycled after a number of requests by default: a new worker must open the
# bundle and rebuild its layer caches (seconds of CPU for a county), and a recycled worker
# drops its idle keep-alive connections, which a client may be reusing at that instant (the
# load test saw both). Region caches are bounded (a few builds per worker). Set
# ACCESS_ATLAS_MAX_REQUESTS to recycle anyway; the jitter keeps workers from going together.
max_requests = int(os.environ.get("ACCESS_ATLAS_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
limit_request_line = 4094
limit_request_fields = 64
limit_request_field_size = 8190
# Gunicorn 27's control socket (an admin interface in the home folder) is off unless asked
# for: several servers on one machine would share its path.
control_socket_disable = os.environ.get("ACCESS_ATLAS_CONTROL_SOCKET", "0") != "1"
# The heartbeat file lives in memory, so a slow disk never makes a healthy worker look hung.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# -- preloading ----------------------------------------------------------------------------
preload_app = os.environ.get("ACCESS_ATLAS_PRELOAD", "1") != "0"
_WARM = os.environ.get("ACCESS_ATLAS_WARM", "1") != "0"
_GC_LOG_S = 0.1
if preload_app:
    # app.py warms caches in a thread at import; in the master that thread would be forked
    # mid-work. Hold it off here and warm in each worker after the fork (post_fork).
    os.environ["ACCESS_ATLAS_WARM"] = "0"


def pre_fork(server, worker):
    """Freeze the master's objects (the imported app) before forking a worker.

    Frozen objects are left out of the garbage collector's full passes, so a worker never
    scans the code and the modules it inherits (and never touches their memory pages,
    which stay shared with the master).
    """
    gc.freeze()


def _warm_and_freeze() -> None:
    import app

    app.warm()
    # The region's layers, indexes and tables now live for the worker's whole life: freeze
    # them too. A full collection then scans only what requests create, in milliseconds,
    # instead of stopping every thread of the worker for 0.1-0.3 s (it did under load).
    gc.collect()
    gc.freeze()


def _log_long_collections(worker) -> None:
    """Log every garbage collection that stops the worker for over ``_GC_LOG_S`` seconds."""
    started: list[float] = [0.0]

    def watch(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        seconds = time.perf_counter() - started[0]
        if seconds > _GC_LOG_S:
            worker.log.warning(
                "worker %s: garbage collection of generation %s took %.0f ms (%s objects freed)",
                worker.pid,
                info.get("generation"),
                seconds * 1000,
                info.get("collected"),
            )

    gc.callbacks.append(watch)


def post_fork(server, worker):
    """Warm the new worker's caches in the background (preloaded app only), then freeze them."""
    _log_long_collections(worker)
    if not (preload_app and _WARM):
        return
    threading.Thread(target=_warm_and_freeze, name="atlas-warm", daemon=True).start()


def worker_abort(worker):
    """Log which worker the master killed for a timeout (SIGABRT)."""
    worker.log.error("worker %s timed out and was aborted; it will be replaced", worker.pid)


# -- logging -------------------------------------------------------------------------------
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("ACCESS_ATLAS_LOGLEVEL", "info")
# The message of each access record (the JSON formatter adds the other fields from gunicorn's
# atoms); the full request line is left out, as its query may hold an address.
access_log_format = "%(m)s %(U)s %(s)s"
_HANDLER = "logging.StreamHandler"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "viewmodel.serving.JsonFormatter"}},
    "handlers": {
        "access": {"class": _HANDLER, "formatter": "json", "stream": "ext://sys.stdout"},
        "error": {"class": _HANDLER, "formatter": "json", "stream": "ext://sys.stderr"},
    },
    "root": {"level": "INFO", "handlers": ["error"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["error"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
    },
}
