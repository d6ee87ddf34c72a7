"""The audit trail: an append-only record of every operator action."""
