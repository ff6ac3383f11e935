"""BookingLifecycleWorkflow: one booking from confirmation to its outcome.

Imports nothing: the workflow sandbox imports this package."""
