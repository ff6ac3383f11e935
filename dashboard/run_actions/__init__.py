"""Acting on runs, for the `/runs` blueprint (`dashboard.views.runs`): signal and update
forms (`handler_forms`), cancel, terminate and reset (`control`), retry with its money
check (`retry`), and bulk retry of the failed runs matching a runs filter (`bulk_retry`).
The panels that offer these actions on pages are `dashboard.presentation.run_panels`.

Every action is authorised by role (the route's `guard`), validated before anything
reaches Temporal (bad input gets field messages, nothing is sent) and audited whatever
the outcome. Payout decisions are not taken here: they go through the approvals queue,
which applies the four-eyes rule and approver limits.
"""
