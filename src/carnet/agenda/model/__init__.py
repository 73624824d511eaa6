"""Pure rules of the agenda: the prevention calendar and its engine (``prevention``)."""
