"""Payments domain (task queue `payments`): payouts, package payouts, commissions, ledger."""
