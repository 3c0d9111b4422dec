"""The Slack edge: listeners, Block Kit, the HTTP and Socket Mode servers, the command line."""
