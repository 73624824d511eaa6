"""The messaging's pages (MSG-1, MSG-2): the person's conversations in their space (``portal``) and the professional's
(``pro``); what both share (``common``)."""
