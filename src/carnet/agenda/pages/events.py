"""Being written."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from carnet.web.deps import csrf_protect

router = APIRouter(dependencies=[Depends(csrf_protect)])
