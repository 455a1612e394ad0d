"""The journey's rules: pure models, events, commands, calendars; no I/O, no clock, no Temporal."""
