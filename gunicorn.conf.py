"""gunicorn settings for the console in production (docs/deployment.md):

    gunicorn -c gunicorn.conf.py "estuary_ops:create_app()"

Threaded workers (gthread): a console request spends most of its time waiting for Temporal
or the database, so a few processes with several threads each serve many staff at once.
Every setting can be overridden by its GUNICORN_* variable.
"""

from __future__ import annotations

import os

from config import Config

# The gateway's longest single wait: the schedules page and the reset points of the
# actions page wait up to 30 s, a history page 3 x TEMPORAL_RPC_TIMEOUT, plus the connect
# timeout that temporal_gateway/gateway.py adds to every call's limit.
GATEWAY_LONGEST_CALL_SECONDS = max(30, Config.TEMPORAL_RPC_TIMEOUT * 3) + (
    Config.TEMPORAL_CONNECT_TIMEOUT
)


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
worker_class = "gthread"
workers = _int("GUNICORN_WORKERS", max(2, os.cpu_count() or 1))
threads = _int("GUNICORN_THREADS", 8)
# Above the gateway's longest call, so a request waiting on Temporal is never the reason a
# worker is killed (with gthread this is the worker's heartbeat, which a waiting request
# does not stop; it still catches a worker that is truly stuck), and a graceful restart
# lets such a request finish.
timeout = _int("GUNICORN_TIMEOUT", GATEWAY_LONGEST_CALL_SECONDS + 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", GATEWAY_LONGEST_CALL_SECONDS + 10)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Recycle workers now and then (jittered so they do not all restart at once).
max_requests = _int("GUNICORN_MAX_REQUESTS", 5000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 500)
# The app is built in each worker, never in the master: each process owns its database
# pool and its Temporal client, which must not be shared across a fork.
preload_app = False
# "-": stdout; set GUNICORN_ACCESS_LOG=off to leave access logging to the proxy.
accesslog = (
    None
    if os.environ.get("GUNICORN_ACCESS_LOG") == "off"
    else os.environ.get("GUNICORN_ACCESS_LOG", "-")
)
errorlog = "-"


def post_worker_init(worker: object) -> None:
    """Before a process serves anyone (at start and after each `max_requests` recycle):
    templates compiled, database and Temporal connected (dashboard/warm_up.py)."""
    from dashboard.warm_up import warm_up

    warm_up(worker.wsgi)  # type: ignore[attr-defined]


def child_exit(server: object, worker: object) -> None:
    """Console metrics in multiprocess mode (docs/observability.md): drop the live gauges
    of a worker that exited, so a scrape no longer adds them up."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
