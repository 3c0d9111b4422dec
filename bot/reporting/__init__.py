"""Incidents over time: the report (`incident-bot report`) and its headline (`/incident stats`)."""
