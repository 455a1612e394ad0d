"""The coordinator dashboard: server-rendered pages (Jinja2), signed in with an API token."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
