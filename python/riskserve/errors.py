"""Typed errors. Every error the server answers carries its stable code (`{"error": {"code", "message"}}`, see
docs/server.md) and HTTP status; local bad input raises the same classes with status None."""

from __future__ import annotations


class RiskserveError(Exception):
    """Base of every riskserve error: `code` is the server's stable code, `status` the HTTP status (None locally)."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None, request_id=None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.status = status
        self.request_id = request_id

    def __str__(self) -> str:
        prefix = f"{self.code}" + (f" ({self.status})" if self.status else "")
        return f"{prefix}: {self.message}"


class ValidationError(RiskserveError, ValueError):
    """A bad name, member, value or query (400 validation_error)."""

    code = "validation_error"


class InvalidArtifact(RiskserveError, ValueError):
    """A model file or pipeline that does not load or score (400 invalid_artifact)."""

    code = "invalid_artifact"


class InvalidInput(RiskserveError, ValueError):
    """Rows that fail the model's or pipeline's schema (400 invalid_input). `errors` lists (row, field, message),
    rows counted from 0 locally; `columns` the fields named."""

    code = "invalid_input"

    def __init__(self, message: str, *, errors=None, **kwargs):
        super().__init__(message, **kwargs)
        self.errors = list(errors or [])
        self.columns = sorted({field for _, field, _ in self.errors if field})


class AuthenticationFailed(RiskserveError, PermissionError):
    """Missing, unknown or malformed credentials (401: unauthenticated, invalid_credentials, ...)."""

    code = "unauthenticated"


class AccessDenied(RiskserveError, PermissionError):
    """Credentials that are not allowed the action (403 access_denied)."""

    code = "access_denied"


class NotFound(RiskserveError, LookupError):
    """An unknown resource (404 not_found)."""

    code = "not_found"


class Conflict(RiskserveError):
    """A request that conflicts with the state of a resource (409)."""

    code = "conflict"


class AlreadyExists(Conflict):
    code = "already_exists"


class InUse(Conflict):
    code = "in_use"


class InvalidState(Conflict):
    code = "invalid_state"


class PayloadTooLarge(RiskserveError):
    code = "payload_too_large"


class UnsupportedMediaType(RiskserveError):
    code = "unsupported_media_type"


class Unavailable(RiskserveError):
    """The server cannot take the request now (503: overloaded, store_unavailable); retrying later may work."""

    code = "store_unavailable"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class Overloaded(Unavailable):
    code = "overloaded"


class ServerError(RiskserveError):
    """A fault of the server (500 internal), or an answer that is not riskserve's."""

    code = "internal"


_BY_CODE = {
    "validation_error": ValidationError,
    "invalid_artifact": InvalidArtifact,
    "invalid_input": InvalidInput,
    "not_found": NotFound,
    "already_exists": AlreadyExists,
    "in_use": InUse,
    "invalid_state": InvalidState,
    "payload_too_large": PayloadTooLarge,
    "unsupported_media_type": UnsupportedMediaType,
    "overloaded": Overloaded,
    "store_unavailable": Unavailable,
    "internal": ServerError,
    "access_denied": AccessDenied,
}

_BY_STATUS = {400: ValidationError, 401: AuthenticationFailed, 403: AccessDenied, 404: NotFound, 409: Conflict,
              413: PayloadTooLarge, 415: UnsupportedMediaType, 503: Unavailable}


def error_from_answer(status: int, code: str | None, message: str, *, retry_after=None, request_id=None):
    """The exception for an error answer: by its stable code, else by its status."""
    cls = _BY_CODE.get(code or "")
    if cls is None:
        cls = AuthenticationFailed if status == 401 else _BY_STATUS.get(status, ServerError)
    kwargs = {"code": code or cls.code, "status": status, "request_id": request_id}
    if issubclass(cls, Unavailable):
        kwargs["retry_after"] = retry_after
    return cls(message, **kwargs)
