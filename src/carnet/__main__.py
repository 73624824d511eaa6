"""``python -m carnet`` is the ``carnet`` command."""

from carnet.cli import app

if __name__ == "__main__":
    app()
