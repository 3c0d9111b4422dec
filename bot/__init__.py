"""incident-bot's domain: incidents, their timeline, and (later) paging, diagnostics and postmortems.

Nothing in this package speaks Slack or SQL directly: Slack lives in `handlers`, SQL in `storage`.
"""
