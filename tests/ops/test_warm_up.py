"""A console process is made ready before it serves (gunicorn's post_worker_init):
templates compiled, database and Temporal connected, what it holds then frozen out of the
garbage collector's walks; a Temporal that does not answer is reported, never a reason
not to start."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from dashboard.warm_up import warm_up
from temporal_gateway.access import set_gateway
from temporal_gateway.gateway import TemporalGateway


@pytest.fixture(autouse=True)
def _unfreeze():
    """warm_up freezes what this test process holds; give it back to the collector."""
    yield
    gc.unfreeze()


def test_every_template_is_compiled_and_the_database_reached(app, caplog):
    gw = TemporalGateway(
        {
            **app.config,
            "TEMPORAL_ADDRESS": "127.0.0.1:9",
            "TEMPORAL_RPC_TIMEOUT": 1,
            "TEMPORAL_CONNECT_TIMEOUT": 1,
        }
    )
    set_gateway(app, gw)
    app.jinja_env.cache.clear()
    try:
        with caplog.at_level(logging.INFO, logger="dashboard.warm_up"):
            done = warm_up(app)
    finally:
        gw.close()
    names = app.jinja_env.list_templates(filter_func=lambda n: n.endswith(".html"))
    assert done.templates == len(names) > 40
    # Jinja keeps compiled templates by (loader, name): each one is there now.
    cached = {key[1] for key in app.jinja_env.cache}
    assert set(names) <= cached
    assert done.database == "ok"
    assert done.temporal.startswith("not reached")
    assert "console process ready" in caplog.text and "Temporal not reached" in caplog.text
    # The app, its templates and its clients are frozen: a full collection skips them.
    assert done.frozen_objects > 10_000 and gc.get_freeze_count() > 10_000
    assert f"{done.frozen_objects} objects frozen" in caplog.text


async def test_a_connected_temporal_is_reported_ok(app, local_env):
    gw = TemporalGateway(
        {
            **app.config,
            "TEMPORAL_ADDRESS": local_env.client.service_client.config.target_host,
            "TEMPORAL_NAMESPACE": local_env.client.namespace,
        }
    )
    set_gateway(app, gw)
    try:
        done = await asyncio.to_thread(warm_up, app)
    finally:
        gw.close()
    assert (done.database, done.temporal) == ("ok", "ok")
