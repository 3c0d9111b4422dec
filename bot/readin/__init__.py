"""The read-in: what someone joining an incident needs to know, built from what the bot recorded."""
