"""ReschedulingWorkflow: moves a booking into a new one.

Imports nothing: the workflow sandbox imports this package."""
