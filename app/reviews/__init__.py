"""Periodic review of approvals: what is due, reminders, and renewal with the evidence unchanged."""
