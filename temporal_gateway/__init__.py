"""The path from our processes to Temporal: connection settings (`client`), the payload
codec both sides must share (`codec`), tracing and metrics exporters (`telemetry`), and
the synchronous gateway (`gateway`, reached with `access.gateway()`) through which the
console and the command line start, signal, query and list runs by workflow *name*.

Below `dashboard/` and `workers/` (both use it), above `estuary.contracts`. It never
imports workflow or activity code.
"""
