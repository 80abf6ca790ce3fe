"""Errors answered the way PVE's API server answers them."""

from __future__ import annotations

__all__ = ["ApiError"]


class ApiError(Exception):
    """An API error: HTTP status, message (reason phrase and JSON `message`), optional per-parameter errors."""

    def __init__(self, status: int, message: str, errors: dict | None = None):
        if not message.endswith("\n"):
            message += "\n"
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors


def fail(message: str, status: int = 500):
    raise ApiError(status, message)


def param_fail(errors: dict):
    raise ApiError(400, "Parameter verification failed.", errors)
