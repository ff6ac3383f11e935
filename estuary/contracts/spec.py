"""`WorkflowSpec`: what the catalogue knows about one workflow. Attached to the workflow
class by `workers.temporal.decorators.monitored_workflow`; kept apart from the catalogue
because workflow modules import it (the sandbox re-imports it for every run), so it
imports only the standard library.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class WorkflowSpec:
    """What the registry, the commands and the console know about one workflow."""

    domain: str
    input_type: type
    description: str
    # Business key: the workflow id for an input (`now` is the starting side's clock).
    business_id: Callable[[Any, datetime], str]
    entity_type: str
    entity_id: Callable[[Any], str | int]
    money: bool = False
    # Signals and updates the console may send, by name, with their argument dataclass.
    signals: tuple[tuple[str, type | None], ...] = ()
    updates: tuple[tuple[str, type | None], ...] = ()
    # The handlers that apply now, from the run's `progress` answer (None: every handler
    # while the run is open). Signals named in `console_signals` only are offered.
    actions_now: Callable[[Any], tuple[str, ...]] | None = None
    # The signals the console offers (None: all of `signals`); the others stay for senders
    # that cannot wait for an answer (a child workflow, the command line).
    console_signals: tuple[str, ...] | None = None
