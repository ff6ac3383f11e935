"""BatchReminderWorkflow: reminders for the bookings of a time window.

Imports nothing: the workflow sandbox imports this package."""
