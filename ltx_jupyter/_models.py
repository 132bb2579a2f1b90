"""Typed objects of fal's queue protocol: log entries, request handles, statuses, updates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

__all__ = [
    "Completed",
    "InProgress",
    "LogEntry",
    "QueueState",
    "QueueStatus",
    "Queued",
    "RequestHandle",
    "Update",
    "UploadProgress",
]

QueueState = Literal["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
_STATES: tuple[QueueState, ...] = ("IN_QUEUE", "IN_PROGRESS", "COMPLETED")


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One log line of a request, as fal sends it."""

    message: str
    level: str = "INFO"
    source: str | None = None
    timestamp: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> LogEntry:
        # dict first: a JSON object is one, and the ABC check costs more per log line
        if not isinstance(data, (dict, Mapping)):
            return cls(message=str(data))
        source = data.get("source")
        timestamp = data.get("timestamp")
        return cls(
            str(data.get("message", "")),
            str(data.get("level") or "INFO"),
            source if isinstance(source, str) else None,
            None if timestamp is None else str(timestamp),
        )

    @property
    def time(self) -> datetime | None:
        """The timestamp as an aware datetime, when the server sent a parsable one."""
        if not self.timestamp:
            return None
        try:
            parsed = datetime.fromisoformat(self.timestamp.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def parse_logs(raw: Any) -> tuple[LogEntry, ...] | None:
    """Log entries from a status body's ``logs`` value (None when the server sent none)."""
    if raw is None:
        return None
    # list first: what JSON gives, and the ABC check costs more per event
    if not isinstance(raw, (list, Sequence)) or isinstance(raw, (str, bytes)):
        return ()
    return tuple(map(LogEntry.from_json, raw))


@dataclass(frozen=True, slots=True)
class RequestHandle:
    """What a submit answered: the request id and the URLs fal gave for it."""

    endpoint_id: str
    request_id: str
    status_url: str
    response_url: str
    cancel_url: str
    queue_position: int | None = None


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """One status of a request, polled or streamed.

    ``logs`` holds what this answer carried: the whole log when polled, only new lines when
    streamed (``None`` when logs were not asked for).
    """

    state: QueueState
    queue_position: int | None = None
    logs: tuple[LogEntry, ...] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_type: str | None = None
    response_url: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> QueueStatus:
        state = data.get("status")
        if state not in _STATES:
            raise ValueError(f"unknown status {state!r}")
        position = data.get("queue_position")
        metrics = data.get("metrics")
        error = data.get("error")
        error_type = data.get("error_type")
        return cls(
            state=state,
            queue_position=position if isinstance(position, int) else None,
            logs=parse_logs(data.get("logs")),
            metrics=dict(metrics) if isinstance(metrics, (dict, Mapping)) else {},
            error=str(error) if error else None,
            error_type=str(error_type) if error_type else None,
            response_url=data.get("response_url")
            if isinstance(data.get("response_url"), str)
            else None,
        )

    @property
    def done(self) -> bool:
        return self.state == "COMPLETED"


@dataclass(frozen=True, slots=True)
class Queued:
    """The request waits in the queue; ``position`` 0 is next."""

    request_id: str
    position: int | None


@dataclass(frozen=True, slots=True)
class InProgress:
    """The request runs; ``logs`` holds only the lines new since the previous update."""

    request_id: str
    logs: tuple[LogEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class Completed:
    """The request finished and its output is in hand (the last update of a run)."""

    request_id: str
    output: dict[str, Any]
    logs: tuple[LogEntry, ...] = ()
    metrics: dict[str, Any] = field(default_factory=dict)


Update = Queued | InProgress | Completed


@dataclass(frozen=True, slots=True)
class UploadProgress:
    """How far the upload of a local file for ``field`` has gone: ``sent`` of ``total`` bytes."""

    field: str
    file_name: str
    sent: int
    total: int
