"""The coordinator dashboard: server-rendered pages (Jinja2), signed in with an API token.

Plain HTML forms and POST-redirect-GET, no script: the pages work in any browser, offline from
the internet (the stylesheet is served here, the charts are inline SVG). Sign-in verifies the
token as the API verifies a bearer token and opens a short server-side session (`session`); every
page checks that session and shows only what the API would let its principal see (the same role
checks, and the read model's scope, `store.views`). One module per reason to change: `render`
(templates, headers, the viewer), `signin`, `pages`, `actions`.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.dashboard import actions, pages, purpose, signin

router = APIRouter()
router.include_router(signin.router)
router.include_router(pages.router)
router.include_router(actions.router)
router.include_router(purpose.router)
