"""Every exception ltx-jupyter raises, in one place.

Messages show the server's own reason (fal's ``detail``), never the API key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AccountError",
    "AuthenticationError",
    "FieldError",
    "HTTPError",
    "InputError",
    "LtxError",
    "MissingCredentialsError",
    "ProtocolError",
    "RateLimitError",
    "RequestCancelledError",
    "RequestTimeoutError",
    "RunFailedError",
    "SchemaDocumentError",
    "UploadError",
    "ValidationError",
]

CREDENTIALS_HINT = (
    "Set FAL_KEY (or FAL_KEY_ID and FAL_KEY_SECRET) in the environment, "
    "or pass key=... to the client; keys are at https://fal.ai/dashboard/keys."
)

BILLING_URL = "https://fal.ai/dashboard/billing"
SUPPORT_EMAIL = "support@fal.ai"


class LtxError(Exception):
    """Base class of every error raised by ltx-jupyter."""


@dataclass(frozen=True)
class FieldError:
    """One invalid field: where it is, what is wrong, and fal's error type."""

    loc: tuple[str | int, ...]
    msg: str
    type: str = "value_error"

    @property
    def field(self) -> str:
        """The field's name, without fal's leading ``body`` segment."""
        parts = [str(p) for p in self.loc if p != "body"]
        return ".".join(parts) or "input"

    def __str__(self) -> str:
        return f"{self.field}: {self.msg}"

    def to_detail(self) -> dict[str, Any]:
        """The entry fal puts in a 422 response's ``detail`` list."""
        return {"loc": list(self.loc), "msg": self.msg, "type": self.type}

    @classmethod
    def from_detail(cls, item: Mapping[str, Any]) -> FieldError:
        loc = item.get("loc") or ()
        if isinstance(loc, str):
            loc = (loc,)
        return cls(
            loc=tuple(loc), msg=str(item.get("msg", "invalid")), type=str(item.get("type", ""))
        )


class InputError(LtxError, ValueError):
    """The input is invalid; found before any request was sent.

    ``errors`` lists every invalid field; the message names each one and what it allows.
    """

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(str(e) for e in self.errors) or "invalid input")

    @property
    def fields(self) -> list[str]:
        return [e.field for e in self.errors]


class SchemaDocumentError(LtxError, ValueError):
    """An endpoint's OpenAPI document is not a valid fal queue document.

    The message names what is wrong (a missing path, a ``$ref`` that does not resolve, a
    property of an unknown type...) and, when known, the endpoint it was read for.
    """

    def __init__(self, problem: str, *, endpoint_id: str | None = None) -> None:
        self.problem = problem
        self.endpoint_id = endpoint_id
        where = f"The OpenAPI document of {endpoint_id}" if endpoint_id else "The OpenAPI document"
        super().__init__(f"{where} is not a valid fal document: {problem}")


class MissingCredentialsError(LtxError):
    """No API key for a host that requires one."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or f"No fal credentials found. {CREDENTIALS_HINT}")


class HTTPError(LtxError):
    """The server answered an HTTP error.

    ``status_code``, ``detail`` (fal's reason), ``error_type`` (``x-fal-error-type`` or the
    body's ``error_type``) and ``request_id`` (when the answer concerns one request) describe it.
    """

    def __init__(
        self,
        status_code: int,
        detail: Any = None,
        *,
        error_type: str | None = None,
        request_id: str | None = None,
        url: str | None = None,
        message: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.detail = detail
        self.error_type = error_type
        self.request_id = request_id
        self.url = url
        super().__init__(message or self._message())

    def _message(self) -> str:
        reason = self.detail if isinstance(self.detail, str) else None
        if reason is None and self.detail is not None:
            reason = str(self.detail)
        text = f"HTTP {self.status_code}"
        if reason:
            text += f": {reason}"
        if self.error_type:
            text += f" ({self.error_type})"
        if self.request_id:
            text += f" [request {self.request_id}]"
        return text


class AuthenticationError(HTTPError):
    """The server refused the credentials (401/403); the message says how to set them."""

    def __init__(self, status_code: int, detail: Any = None, **kwargs: Any) -> None:
        reason = f": {detail}" if isinstance(detail, str) and detail else ""
        super().__init__(
            status_code,
            detail,
            message=f"HTTP {status_code}{reason}. {CREDENTIALS_HINT}",
            **kwargs,
        )


class AccountError(HTTPError):
    """fal will not run requests for this account: 402, or 403 with the account locked.

    The message is fal's reason and what to do: top up for a used-up balance (402, or fal's
    "Exhausted balance" lock), write to fal's support for an account fal locked itself.
    """

    def __init__(self, status_code: int, detail: Any = None, **kwargs: Any) -> None:
        reason = _reason(detail)
        lowered = reason.lower()
        if status_code == 402 or "balance" in lowered or "top up" in lowered:
            advice = f"The fal account has no credit left: top up at {BILLING_URL}, then run again."
        elif "admin" in lowered:
            advice = f"fal has locked the account: write to {SUPPORT_EMAIL}."
        else:
            advice = f"fal has locked the account: see {BILLING_URL}, or write to {SUPPORT_EMAIL}."
        shown = f": {reason.rstrip('.')}" if reason else ""
        super().__init__(
            status_code, detail, message=f"HTTP {status_code}{shown}. {advice}", **kwargs
        )


class RateLimitError(HTTPError):
    """fal refused the request for too many requests at once (429), past the retry rule.

    ``retry_after`` is the wait fal asked for in seconds (``Retry-After``), when it sent one;
    ``attempts`` how many times the call was sent.
    """

    def __init__(
        self,
        detail: Any = None,
        *,
        retry_after: float | None = None,
        attempts: int = 1,
        **kwargs: Any,
    ) -> None:
        self.retry_after = retry_after
        self.attempts = attempts
        reason = _reason(detail)
        shown = f": {reason}" if reason else ""
        wait = f"wait {_duration(retry_after)} (fal's Retry-After)" if retry_after else "wait"
        refused = f"refused {attempts} times" if attempts > 1 else "refused"
        super().__init__(
            429,
            detail,
            message=f"HTTP 429{shown} ({refused}). fal is limiting this account's requests: "
            f"{wait}, then run again, or run fewer jobs at once.",
            **kwargs,
        )


def _reason(detail: Any) -> str:
    """fal's reason on one line (its ``detail``), at most 300 characters."""
    from ._text import shorten  # here: `import ltx_jupyter` imports this module, not _text

    return "" if detail is None else shorten(str(detail), 300)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class UploadError(LtxError):
    """A local file given for a field could not be read or uploaded; nothing was submitted.

    ``field`` is the input field, ``path`` the file as given.
    """

    def __init__(self, field: str, path: str, reason: str) -> None:
        self.field = field
        self.path = path
        self.reason = reason
        super().__init__(f"{field}: {path}: {reason}; nothing was submitted")


class ValidationError(HTTPError):
    """The server refused the input (422); ``errors`` holds every field error of ``detail``."""

    def __init__(
        self,
        errors: Sequence[FieldError],
        *,
        detail: Any = None,
        error_type: str | None = None,
        request_id: str | None = None,
        url: str | None = None,
    ) -> None:
        self.errors = list(errors)
        reasons = "; ".join(str(e) for e in self.errors) or str(detail or "invalid input")
        super().__init__(
            422,
            detail,
            error_type=error_type,
            request_id=request_id,
            url=url,
            message=f"HTTP 422, invalid input: {reasons}"
            + (f" ({error_type})" if error_type else ""),
        )


class ProtocolError(LtxError):
    """The server's answer does not follow fal's queue protocol (malformed, truncated...)."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        self.request_id = request_id
        super().__init__(message + (f" [request {request_id}]" if request_id else ""))


class RequestTimeoutError(LtxError, TimeoutError):
    """The client's deadline passed; the remote request was asked to cancel.

    ``request_id`` is kept so the request can still be looked up or resumed.
    """

    def __init__(self, timeout: float, request_id: str | None = None) -> None:
        self.timeout = timeout
        self.request_id = request_id
        where = f" for request {request_id}" if request_id else ""
        super().__init__(f"No result within {timeout:g} s{where}; cancellation was requested.")


class RunFailedError(LtxError):
    """The request ran and failed: fal reported ``error`` on completion or on the result."""

    _what = "Run failed"

    def __init__(
        self,
        error: str,
        *,
        error_type: str | None = None,
        request_id: str | None = None,
        status_code: int | None = None,
    ) -> None:
        self.error = error
        self.error_type = error_type
        self.request_id = request_id
        self.status_code = status_code
        text = f"{self._what}: {error}"
        if error_type:
            text += f" ({error_type})"
        if request_id:
            text += f" [request {request_id}]"
        super().__init__(text)


class RequestCancelledError(RunFailedError):
    """The request was cancelled before it produced a result."""

    _what = "Cancelled"
