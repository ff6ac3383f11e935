"""A signed-in console for the page benchmarks: the real app (temporary SQLite database)
with its gateway bound to the bench's Temporal server, made ready as a production console
process is (`dashboard.warm_up`), and a Flask test client."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def signed_in_console(address: str, namespace: str, prefix: str) -> Iterator[tuple[Any, Any]]:
    """(app, test client) signed in as a viewer; the gateway is closed on exit."""
    from config import Config, TestingConfig
    from dashboard.warm_up import warm_up
    from estuary.db import db
    from estuary.models import StaffUser
    from estuary_ops import create_app
    from temporal_gateway.access import set_gateway
    from temporal_gateway.gateway import TemporalGateway

    tmp = Path(tempfile.mkdtemp(prefix="estuary-bench-"))
    app = create_app(
        TestingConfig,
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp / 'bench.db'}",
        WTF_CSRF_ENABLED=False,
        # As in production: a listed run's title is reused for a few seconds. The list
        # itself stays uncached (TestingConfig), so every page asks Temporal.
        RUN_LABELS_CACHE_SECONDS=Config.RUN_LABELS_CACHE_SECONDS,
    )
    with app.app_context():
        db.create_all()
        user = StaffUser(email="bench@estuary.local", name="Bench", role="viewer")
        user.set_password("bench password 1")
        db.session.add(user)
        db.session.commit()

    class CountingGateway(TemporalGateway):
        """Counts the calls it makes to Temporal (every call goes through `run`)."""

        calls = 0

        def run(self, fn: Any, timeout: float | None = None) -> Any:
            self.calls += 1
            return super().run(fn, timeout)

    gw = CountingGateway(
        {
            **app.config,
            "TEMPORAL_ADDRESS": address,
            "TEMPORAL_NAMESPACE": namespace,
            "TEMPORAL_TASK_QUEUE_PREFIX": prefix,
        }
    )
    set_gateway(app, gw)
    # Made ready as gunicorn makes each console process ready (gunicorn.conf.py).
    warm_up(app)
    client = app.test_client()
    client.post(
        "/auth/login", data={"email": "bench@estuary.local", "password": "bench password 1"}
    )
    app.extensions["bench_gateway"] = gw
    try:
        yield app, client
    finally:
        gw.close()
