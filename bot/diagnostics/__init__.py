"""Read-only database diagnostics: allowlisted checks run safely against configured targets, and the
watchdog that samples connection figures to raise the alarm before a pool runs dry."""
