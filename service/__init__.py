"""The application service layer: what every entry point (HTTP, dashboard, CLI) does, in one place."""
