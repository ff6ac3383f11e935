"""How console pages call Temporal: a failed call leaves the reason for the page's banner
instead of failing the page, and the visibility scope of this console's runs. Below the
views, so every page (runs, home, workers, domain pages) shares them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import g

from dashboard import visibility
from temporal_gateway.access import gateway
from temporal_gateway.gateway import GatewayError, TemporalUnavailable

T = TypeVar("T")


def temporal(fn: Callable[..., T], *args: Any, default: Any = None, **kwargs: Any) -> T | Any:
    """Call the gateway; on failure remember why (for the page's banner) and return default.

    Once Temporal was found unreachable in a request, later calls in it are skipped, so a
    page with several Temporal parts waits for the timeout once, not once per part.
    """
    if g.get("temporal_unreachable"):
        return default
    try:
        return fn(*args, **kwargs)
    except TemporalUnavailable as exc:
        g.temporal_unreachable = exc.message
        return default
    except GatewayError as exc:
        g.setdefault("temporal_errors", []).append(exc.message)
        return default


def console_scope() -> str:
    """This console's visibility scope (`visibility.console_scope` of its gateway's
    prefix): what every page and bulk retry scope their queries with."""
    return visibility.console_scope(gateway().prefix)
