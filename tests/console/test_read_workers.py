"""Workers page and catalogue: each domain's task queue with its pollers, and whether
the domain has a live worker, against a real dev server with real domain workers."""

from __future__ import annotations

import pytest

from tests.conftest import gateway_for, running_workers
from tests.console.read_support import get, login
from workers.temporal import registry

pytestmark = pytest.mark.live


async def test_live_worker_per_domain(app, local_env):
    async with running_workers(local_env.client, app, ["payments"]) as prefix:
        gateway_for(app, local_env, prefix)
        client = login(app)
        html = (await get(client, "/workers")).get_data(as_text=True)
        catalogue = (await get(client, "/workflows")).get_data(as_text=True)
    payments = html.split('data-testid="queue-payments"')[1].split("</section>")[0]
    assert 'data-testid="live"' in payments
    assert f"{prefix}payments" in payments
    assert "workflow tasks" in payments and "activity tasks" in payments
    for other in registry.domains():
        if other != "payments":
            block = html.split(f'data-testid="queue-{other}"')[1].split("</section>")[0]
            assert 'data-testid="no-worker"' in block
            assert f"flask start-worker --domains {other}" in block
    block = catalogue.split('data-testid="domain-payments"')[1].split("</h2>")[0]
    assert "live worker" in block and "no live worker" not in block
