"""All I/O: the event store, the people vault, notifications. Nothing runs at import time."""
