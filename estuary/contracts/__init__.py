"""The lowest layer: workflow names, task queues, input/result/signal/update dataclasses,
reason codes, approval rules, input parsing and search-attribute names. Imports nothing of
ours (stdlib and temporalio's plain types only), so the console, the domain and the
workflow sandbox can all import it.

Imports nothing itself: each contract module is imported by name.
"""
