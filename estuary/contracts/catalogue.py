"""The domain catalogue: which domains exist and the task queue each one polls.

The one place that names the domains. The workers' registry discovers a domain as a
package under `workers/`; a test checks that what it finds equals this list.
"""

from __future__ import annotations

# A domain is a business area with its own task queue (one worker deployment each).
DOMAINS: tuple[str, ...] = ("bookings", "maintenance", "payments", "practitioners")


def task_queue(domain: str, prefix: str = "") -> str:
    """The task queue of `domain` under a deployment's queue prefix."""
    return f"{prefix}{domain}"
