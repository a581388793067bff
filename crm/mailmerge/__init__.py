"""Mail merges, the outbox and suppressions."""
