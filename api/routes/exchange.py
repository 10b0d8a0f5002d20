"""Data exchange: CSV export and import of accounts, contacts and products; vCards of contacts."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["exchange"])
