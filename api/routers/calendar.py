"""(being written) calendar routes."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["calendar"])
