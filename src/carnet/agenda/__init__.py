"""Agenda and prevention (AGD-1..3): appointments, reminders and the prevention calendar."""
