"""Tests of deadlines, reminders, escalation, the message centre and the notification channels."""
