"""Alerts from monitoring: Prometheus Alertmanager's webhook (payload version 4) and Grafana Alerting's
webhook contact point, parsed (`notification`), matched against `[[alerts.rules]]` (`rules`), and stored
and shown (`service`)."""
