"""The domains and their task queues: the one place that names them.

Kept apart from the rest of the catalogue because workflow code imports it (the sandbox
re-imports it for every run, so it imports nothing).
"""

from __future__ import annotations

# A domain is a business area with its own task queue (one worker deployment each).
DOMAINS: tuple[str, ...] = ("bookings", "maintenance", "payments", "practitioners")


def task_queue(domain: str, prefix: str = "") -> str:
    """The task queue of `domain` under a deployment's queue prefix."""
    return f"{prefix}{domain}"
