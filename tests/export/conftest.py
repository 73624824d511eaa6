"""The space with something of everything (``tests/export/test_exported_resources.py``), for every module here."""

from tests.export.test_exported_resources import space  # noqa: F401 (a fixture)
