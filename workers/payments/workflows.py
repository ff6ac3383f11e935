"""The payments domain's workflows, as the registry finds them (workers.temporal.registry).

Each workflow lives in a module of its own (the sandbox re-imports a workflow's module for
every new run, so a payout run pays for the payout module only):
payout_workflow (PractitionerPayoutWorkflow), batch_workflow (BatchPractitionerPayoutWorkflow),
package_workflow (ProgressivePackagePayoutWorkflow), ledger_workflows (the ledger check, the
payout sweep and reconciliation, the commission calculation).
"""

from __future__ import annotations

from workers.payments.batch_workflow import BatchPractitionerPayoutWorkflow
from workers.payments.ledger_workflows import (
    CommissionCalculationWorkflow,
    LedgerReconciliationWorkflow,
    PayoutReconciliationWorkflow,
    PayoutSweepWorkflow,
)
from workers.payments.package_workflow import ProgressivePackagePayoutWorkflow
from workers.payments.payout_workflow import PractitionerPayoutWorkflow

__all__ = [
    "BatchPractitionerPayoutWorkflow",
    "CommissionCalculationWorkflow",
    "LedgerReconciliationWorkflow",
    "PayoutReconciliationWorkflow",
    "PayoutSweepWorkflow",
    "PractitionerPayoutWorkflow",
    "ProgressivePackagePayoutWorkflow",
]
