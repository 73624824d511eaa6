"""The one base of every error a person may read (issue #9): ``message`` is French, safe to show, and holds
no health data. Interfaces render it (page, RFC 7807 problem, OperationOutcome, CLI line) as it is."""

from __future__ import annotations


class CarnetError(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class Unavailable(CarnetError):
    """Something Carnet depends on (the documents' object storage…) is momentarily down: the interfaces answer
    503 with this French message, and nothing was written."""
