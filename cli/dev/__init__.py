"""`talent api` and `talent dev`: the HTTP API alone, or the whole service on this machine.

`stack` starts and stops the parts, `temporal` the dev server, `host` guards ports and the data
dir, `demo` loads the demo cohort, `tokens` writes the dev tokens file, `banner` says where it all is.
"""

from __future__ import annotations

from cli.dev.stack import run_api, run_dev

__all__ = ["run_api", "run_dev"]
