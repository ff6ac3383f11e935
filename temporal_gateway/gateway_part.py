"""`GatewayPart`: the base of each group of `TemporalGateway` methods that sits in a
module of its own (history reads, handler calls, worker deployments). It names what
those methods use of the gateway; `TemporalGateway` provides it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any


class GatewayPart:
    """What a group of gateway methods may use of `TemporalGateway`."""

    # Provided by TemporalGateway.
    timeout: float
    identity: str
    run: Callable[..., Any]
    rpc_timeout: Callable[[], timedelta]
