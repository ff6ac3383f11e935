"""Practitioners domain (task queue `practitioners`): onboarding, document re-verification,
subscription renewals, training certification."""
