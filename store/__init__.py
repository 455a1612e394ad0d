"""PostgreSQL persistence: the event store, its read models, the outbox and the people vault."""
