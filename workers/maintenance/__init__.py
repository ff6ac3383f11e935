"""Maintenance domain (task queue `maintenance`): upkeep of the console's own records,
kept off the business queues so it never waits behind a payout batch: pruning old
sign-in attempts and ended sessions, and anchoring the audit chain head outside the
database."""
