"""Deterministic Temporal workflows: they orchestrate, the domain decides."""
