"""Incidents: what they are (values), what users ask of them (commands), and what changing them does
(service)."""
