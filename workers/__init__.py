"""Temporal workers: the integration core (`workers.temporal`) and one package per domain.

Imports nothing at module level: the workflow sandbox imports this package.
"""

from __future__ import annotations

from typing import Any


def register_commands(app: Any) -> None:
    """Register the worker side's `flask` commands on `app` (the composition root calls it)."""
    from workers.temporal.cli import register_commands as register

    register(app)
