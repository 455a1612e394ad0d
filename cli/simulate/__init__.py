"""`talent programme simulate`: scripted journeys of a programme on a throw-away database and Temporal.

`script` says what the scripted people do and when, `drive` plays it against the workflows, `report`
prints what happened, `run` sets up and tears down the throw-away database and Temporal around it.
"""

from __future__ import annotations

from cli.simulate.run import main

__all__ = ["main"]
