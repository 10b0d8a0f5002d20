"""Migration of running instances to another version (placeholder filled below)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["migration"])
