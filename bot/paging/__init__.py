"""Paging teams: who to reach (teams from the configuration), how (one module per provider behind
`Provider`), and when to go further up (escalation)."""
