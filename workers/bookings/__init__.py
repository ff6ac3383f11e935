"""Bookings domain (task queue `bookings`): booking lifecycles, rescheduling, reminders."""
