"""The profile over FHIR R4 (PRF-3) — being written."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/fhir")
