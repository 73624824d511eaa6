"""Backup and restore of a whole instance (issue #18-4): an operator's work, beside ``carnet.maintenance``.

``service.py`` does the work (database snapshot, blobs, manifest; checks and restore), ``cli.py`` is
``carnet backup create|restore``. No capability imports this folder: only the command line does.
"""
