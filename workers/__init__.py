"""Temporal workers: the integration core (`workers.temporal`) and one package per domain."""
