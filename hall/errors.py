"""Errors a service raises; each becomes the API's uniform error body with its status code."""

from __future__ import annotations

from http import HTTPStatus


class HallError(Exception):
    """A refusal a person can understand; `errors` names fields or diagram elements."""

    code = 400

    def __init__(self, message: str, errors: dict | list | None = None, code: int | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors
        if code is not None:
            self.code = code

    def to_dict(self) -> dict:
        body = {"code": self.code, "status": HTTPStatus(self.code).phrase, "message": self.message}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


class BadRequest(HallError):
    code = 400


class Forbidden(HallError):
    code = 403


class NotFound(HallError):
    code = 404


class Conflict(HallError):
    code = 409


class PayloadTooLarge(HallError):
    code = 413


class Invalid(HallError):
    code = 422
