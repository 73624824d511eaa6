"""``python -m carnet`` is the ``carnet`` command."""

from carnet.cli import app

app()
