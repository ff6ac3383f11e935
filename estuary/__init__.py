"""Estuary: the business (models, services, ledger, provider adapters, demo data) and, in
`estuary.contracts`, what the console and the workers agree on. No HTTP, no Temporal client.

Imports nothing: the workflow sandbox imports `estuary.contracts` and must stay light.
"""
