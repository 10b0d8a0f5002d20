"""CRM service and relationship resources: incidents, problems, opportunities, campaigns, activities, appointments."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["service desk"])
