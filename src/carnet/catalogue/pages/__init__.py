"""The catalogue's pages: the person's (``portal``: browse, search, connected apps, disconnect, report) and the
operator's (``operator``: review and decide)."""

from carnet.catalogue.pages.operator import router as operator_router
from carnet.catalogue.pages.portal import router as portal_router

__all__ = ["operator_router", "portal_router"]
