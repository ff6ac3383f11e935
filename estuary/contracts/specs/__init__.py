"""The catalogue's data, one module per domain (`bookings`, `maintenance`, `payments`,
`practitioners`): each declares `DOMAIN`, its workflows (`WORKFLOWS`, `WorkflowSpec`s)
and its Temporal Schedules (`SCHEDULES`). `estuary.contracts.catalogue` reads them; the
workers' registry checks its workflow classes against them.
"""
