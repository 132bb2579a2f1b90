"""The finished video as a plain notebook output: a mimebundle that needs no widget state.

A saved or exported notebook, GitHub and nbviewer show it as it is: ``text/plain`` for text
viewers, ``text/html`` with a ``<video controls>`` element, and metadata naming the request,
the endpoint and the parameters. The video is referenced by URL or by relative path; its bytes
go into the notebook only when embedding is asked for.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._history import redact_for_history
from ._html import video_mimebundle
from ._text import counted, shorten

if TYPE_CHECKING:
    from ._endpoints import EndpointInfo
    from ._history import HistoryEntry
    from ._jobs import Job, JobSession, RemoteStatus
    from ._openapi import EndpointSchema
    from ._pricing import Estimate, Prices
    from ._schema import ValidatedInput, VideoFile

#: Characters of the prompt shown in a row of ``%ltx jobs``.
PROMPT_COLUMN = 40

__all__ = [
    "Table",
    "VideoDisplay",
    "entry_video",
    "job_caption",
    "job_mimebundle",
    "job_video",
    "jobs_table",
    "relative_src",
    "resume_command",
    "video_caption",
    "video_source",
]


class VideoDisplay:
    """A video output: shown as a ``<video>`` player in notebooks, a line of text elsewhere."""

    def __init__(self, src: str, *, text: str, caption: str, metadata: dict[str, Any]) -> None:
        self.src = src
        self.text = text
        self.caption = caption
        self.metadata = metadata

    def _repr_mimebundle_(
        self, include: Any = None, exclude: Any = None
    ) -> tuple[dict[str, str], dict[str, Any]]:
        return video_mimebundle(
            self.src, text=self.text, caption=self.caption, metadata=self.metadata
        )

    def __repr__(self) -> str:
        return self.text


def relative_src(path: Path) -> str:
    """A saved file as a ``src`` relative to the working directory (the notebook's folder)."""
    return Path(os.path.relpath(path.resolve(), Path.cwd().resolve())).as_posix()


def video_source(url: str, saved_path: Path | None = None) -> str:
    """Where a player loads a video from: the saved file by relative path, else its URL."""
    return relative_src(saved_path) if saved_path is not None else url


def video_caption(
    input: Mapping[str, Any],
    *,
    seed: int | None = None,
    video: VideoFile | None = None,
    run_time: float | None = None,
    request_id: str | None = None,
    cost: str | None = None,
) -> str:
    """One line under a video: seed, steps, guidance, duration, size, sound, run time, cost
    and request id, each where known.

    ``input`` is what the endpoint ran (its defaults filled in); ``seed`` is the one the
    result reported (else the input's); ``cost`` the estimate's text. Every number is
    formatted the same way wherever a caption is shown.
    """
    parts = []
    if seed is None:
        seed = input.get("seed")
    if seed is not None:
        parts.append(f"seed {seed}")
    steps = input.get("num_inference_steps")
    if steps is not None:
        parts.append(f"{steps} steps")
    guidance = input.get("guidance_scale")
    if isinstance(guidance, (int, float)):
        parts.append(f"guidance {guidance:g}")
    if video is not None:
        if video.duration is not None:
            parts.append(f"{video.duration:.1f} s")
        if video.width and video.height:
            parts.append(f"{video.width}×{video.height}")
    if input.get("generate_audio") is True:
        parts.append("with sound")
    if run_time is not None:
        parts.append(f"made in {run_time:.1f} s")
    if cost is not None:
        parts.append(f"est. {cost}")
    if request_id:
        parts.append(f"request {request_id}")
    return " · ".join(parts)


def job_caption(job: Job) -> str:
    """The caption of a job's video (:func:`video_caption` of what the job knows)."""
    result = job.result
    return video_caption(
        job.parameters,
        seed=result.seed if result is not None else None,
        video=result.video if result is not None else None,
        run_time=job.run_time,
        request_id=job.request_id,
        cost=job.estimate.short if job.estimate is not None else None,
    )


def job_video(job: Job) -> VideoDisplay:
    """The display object of a completed job's video.

    The source is the saved file's relative path when the job was saved, else the URL; for
    a job started with ``embed`` it is the bytes the job downloaded when it finished (as a
    ``data:`` URI). Nothing is downloaded here: a display call never blocks on the network.
    """
    assert job.result is not None
    video = job.result.video
    caption = job_caption(job)
    src = video_source(video.url, job.saved_path)
    note = ""
    if job.options.embed:
        if job.video_bytes is not None:
            content_type = video.content_type or "video/mp4"
            encoded = base64.b64encode(job.video_bytes).decode("ascii")
            src = f"data:{content_type};base64,{encoded}"
        else:
            note = " (not embedded: the download failed; shown by URL)"
    metadata = {
        "request_id": job.request_id,
        "endpoint": job.endpoint,
        "parameters": redact_for_history(job.input),
        "url": video.url,
        "seed": job.result.seed,
    }
    if job.saved_path is not None:
        metadata["path"] = relative_src(job.saved_path)
    where = metadata.get("path") or video.url
    text = f"LTX video {job.request_id}: {where} ({caption}){note}"
    return VideoDisplay(src, text=text, caption=caption, metadata=metadata)


def job_mimebundle(job: Job) -> tuple[dict[str, str], dict[str, Any]]:
    """How a :class:`Job` shows as an output: its video once completed, else its status line.

    The magic registers this with IPython's display formatter, so the job model itself holds
    no display code.
    """
    if job.result is not None:
        return job_video(job)._repr_mimebundle_()
    return {"text/plain": repr(job)}, {}


def _age(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    if seconds < 129600:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"


JOBS_HEADERS = ("id", "status", "age", "duration", "cost", "prompt", "link")


def resume_command(request_id: str) -> str:
    """The magic that follows ``request_id`` again, as a person types it."""
    return f"%ltx resume {request_id}"


def jobs_table(
    session: JobSession,
    entries: list[HistoryEntry] | None = None,
    remote: dict[str, RemoteStatus] | None = None,
) -> Table:
    """The jobs of ``session`` and of its history (``entries``, read from it when not given),
    newest first.

    A request this session follows shows its job's status. Another shows what the server said
    (``remote``, from :meth:`JobSession.read_statuses`), else what the history last recorded;
    the link of one that has not ended is the command that resumes it.
    """
    now = time.time()
    if entries is None:
        entries = session.history.entries()
    remote = remote or {}
    live = {job.request_id: job for job in session.jobs if job.request_id}
    recorded = {entry.request_id for entry in entries}
    rows: list[tuple[Any, ...]] = []
    for job in reversed(session.jobs):
        # Jobs not submitted yet, and any whose id the history lacks (it could not be written).
        if job.request_id is None or job.request_id not in recorded:
            duration = f"{job.elapsed:.1f}s" if job.done else ""
            link = job.result.url if job.result else None
            rows.append(
                (
                    job.request_id or job.short_id,
                    str(job.status),
                    _age(now - job.created_at),
                    duration,
                    job.estimate.short if job.estimate is not None else "",
                    shorten(job.prompt, PROMPT_COLUMN),
                    link,
                )
            )
    for entry in entries:
        job = live.get(entry.request_id)
        cost = entry_cost(entry) or ""
        if job is not None:
            status, duration = str(job.status), job.elapsed if job.done else None
            link = job.result.url if job.result else entry.video_url
            cost = job.estimate.short if job.estimate is not None else cost
        else:
            found = remote.get(entry.request_id)
            status = found.status if found is not None else (entry.status or "unknown")
            status = _STATUS_WORDS.get(status, status.lower())
            duration = entry.duration
            link = (found.video_url if found is not None else None) or entry.video_url
            if status not in ("completed", "failed", "cancelled"):
                link = resume_command(entry.request_id)
        submitted = entry.submitted_at.timestamp() if entry.submitted_at else None
        rows.append(
            (
                entry.request_id,
                status,
                _age(now - submitted) if submitted else "",
                f"{duration:.1f}s" if duration is not None else "",
                cost,
                shorten(entry.prompt, PROMPT_COLUMN),
                link,
            )
        )
    notes = []
    if session.history.read_problem:
        notes.append(f"the history {session.history.read_problem}: this session's jobs only")
    footer = "\n".join(filter(None, (session_total(session.jobs), *notes)))
    if not rows:
        return Table(JOBS_HEADERS, rows, title="no ltx jobs yet", footer="\n".join(notes))
    return Table(JOBS_HEADERS, rows, footer=footer, links=("link",))


#: The server's words, should a journal hold them, as a job's status words.
_STATUS_WORDS = {"IN_QUEUE": "queued", "IN_PROGRESS": "running", "COMPLETED": "completed"}


def entry_cost(entry: HistoryEntry) -> str | None:
    """A history entry's estimated cost as text (``$0.48``), or None when unknown."""
    if entry.cost is None:
        return None
    from ._pricing import format_money

    return format_money(entry.cost, entry.currency or "USD")


def session_total(jobs: Sequence[Job]) -> str:
    """One line: the estimated cost of ``jobs`` (those with a known price) and how many
    have none."""
    if not jobs:
        return ""
    from ._pricing import add_up, format_totals

    totals, unknown = add_up(
        (job.estimate.amount, job.estimate.currency) if job.estimate else (None, None)
        for job in jobs
    )
    text = f"this session: {counted(len(jobs), 'job')}, estimated "
    text += format_totals(totals) or "$0.00"
    if unknown:
        text += f" ({unknown} with no known price)"
    return text


def entry_video(entry: HistoryEntry) -> VideoDisplay:
    """The video of a job found in the history (by its URL)."""
    assert entry.video_url is not None
    caption = video_caption(
        entry.input, seed=entry.seed, request_id=entry.request_id, cost=entry_cost(entry)
    )
    metadata = {
        "request_id": entry.request_id,
        "endpoint": entry.endpoint,
        "parameters": entry.input,
        "url": entry.video_url,
        "seed": entry.seed,
    }
    return VideoDisplay(
        video_source(entry.video_url),
        text=f"LTX video {entry.request_id}: {entry.video_url} ({caption})",
        caption=caption,
        metadata=metadata,
    )


class DryRun:
    """``%%ltx --dry-run``: the validated input and its estimate, nothing sent."""

    def __init__(self, validated: ValidatedInput, estimate: Estimate) -> None:
        self.validated = validated
        self.estimate = estimate

    def _lines(self) -> list[str]:
        body = json.dumps(
            redact_for_history(self.validated.arguments), indent=2, ensure_ascii=False
        )
        lines = [f"ltx dry run · {self.validated.endpoint_id} · nothing sent", body]
        lines.append(f"estimated cost: {self.estimate.describe()}")
        lines += [f"note: {warning}" for warning in self.validated.warnings]
        return lines

    def __repr__(self) -> str:
        return "\n".join(self._lines())

    def _repr_html_(self) -> str:
        from ._html import escape

        title, body, *rest = self._lines()
        notes = "".join(f"<div>{escape(line)}</div>" for line in rest)
        return f"<div><b>{escape(title)}</b><pre>{escape(body)}</pre>{notes}</div>"


class Table:
    """A small table shown as HTML in notebooks and as aligned text elsewhere."""

    def __init__(
        self,
        headers: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        title: str = "",
        footer: str = "",
        links: Sequence[str] = (),
    ) -> None:
        self.headers = tuple(headers)
        self.rows = [tuple("" if cell is None else cell for cell in row) for row in rows]
        self.title = title
        self.footer = footer
        #: Columns whose http(s) URLs become links in HTML.
        self.links = tuple(links)

    def __repr__(self) -> str:
        lines = [self.title] if self.title else []
        if self.rows:
            table = [self.headers, *[tuple(str(c) for c in row) for row in self.rows]]
            widths = [max(len(row[i]) for row in table) for i in range(len(self.headers))]
            lines += [
                "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                for row in table
            ]
        # A blank line between the rows and the footer: text readers can tell them apart.
        return "\n".join(
            [*lines, "", self.footer]
            if self.footer and self.rows
            else [*lines, self.footer]
            if self.footer
            else lines
        )

    def _repr_html_(self) -> str:
        from ._html import escape, table_html

        title = f"<div><b>{escape(self.title)}</b></div>" if self.title else ""
        table = table_html(self.headers, self.rows, links=dict.fromkeys(self.links, True))
        footer = "".join(
            f'<div class="ltx-note" style="font-size: 12px">{escape(line)}</div>'
            for line in self.footer.splitlines()
        )
        return title + (table if self.rows else "") + footer


def endpoints_table(
    infos: Sequence[EndpointInfo], prices: Prices, *, text: str = "", note: str | None = None
) -> Table:
    """``%ltx endpoints``: id, family, category, title and unit price of each endpoint."""
    rows = []
    for info in infos:
        price = prices.get(info.endpoint_id)
        rows.append(
            (
                info.endpoint_id,
                info.family or "",
                info.category or "",
                info.title,
                price.describe() if price is not None else "price unknown",
            )
        )
    title = counted(len(rows), "endpoint")
    if text:
        title += f" matching {text!r}"
    if note:
        title += f" ({note})"
    return Table(("id", "family", "category", "title", "price"), rows, title=title)


def schema_table(schema: EndpointSchema, *, source: str = "") -> Table:
    """``%ltx schema ID``: every input field with type, allowed values, default and
    description, in fal's display order."""
    rows = []
    for spec in schema.fields:
        kind = (spec.file_kind and f"{spec.file_kind} file") or spec.type or "any"
        if spec.type == "array" and spec.items is not None and spec.items.ref:
            kind = f"list of {spec.items.ref}"
        default = json.dumps(spec.default) if spec.has_default else ""
        rows.append(
            (
                spec.name + (" *" if spec.required else ""),
                kind,
                spec.allowed(),
                shorten(default, 40),
                shorten(spec.description or "", 80),
            )
        )
    title = f"{schema.endpoint_id} ({schema.category or 'endpoint'}; * required"
    title += f"; schema {source})" if source else ")"
    return Table(("field", "type", "allowed", "default", "description"), rows, title=title)
