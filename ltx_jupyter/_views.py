"""The job view: a live widget for one job, and its text form for frontends without widgets.

The view listens to its job on the runner thread and updates itself only by assigning traits,
coalesced to at most one update per ``interval`` (plus one per second for the clock), so a job
logging thousands of lines costs a bounded number of comm messages and the browser stays
responsive. The log shows a bounded tail; the job keeps every line.
"""

from __future__ import annotations

import threading
import time
from typing import Any, TextIO

import ipywidgets as widgets

from ._display import job_caption, relative_src, video_source
from ._html import escape, link_html, pre_html, video_html
from ._jobs import Job, JobStatus
from ._runner import ScheduledCall
from ._widgets import close_tree

__all__ = ["JobView", "follow_in_text"]

_STATUS_COLOURS = {
    JobStatus.SUBMITTING: "#888",
    JobStatus.UPLOADING: "#888",
    JobStatus.QUEUED: "#b8860b",
    JobStatus.RUNNING: "#1e6fd9",
    JobStatus.COMPLETED: "#2e8b57",
    JobStatus.FAILED: "#c0392b",
    JobStatus.CANCELLED: "#888",
    JobStatus.DETACHED: "#888",
}
# column-reverse keeps the box scrolled to its newest line. The inner div must not shrink:
# JupyterLab styles <pre> as a scroll container, so a shrinking <pre> would clip itself at its
# oldest line instead of letting the box scroll.
_LOG_BOX = (
    '<div class="ltx-log-box" style="max-height: 14em; overflow-y: auto; display: flex; '
    'flex-direction: column-reverse; font-size: 12px; line-height: 1.35">'
    '<div style="flex-shrink: 0">{}</div></div>'
)
_CLOCK_PERIOD = 1.0


class JobView(widgets.VBox):
    """Status line, notes, progress bar (the upload's, then the steps'), live log, Cancel and
    Save, then the video with its caption.

    Its text form (``repr``) is the job's status line, so viewers without widget support show
    something meaningful.
    """

    def __init__(
        self,
        job: Job,
        *,
        log_lines: int = 20,
        interval: float = 0.25,
        save_dir: str | None = None,
        show_video: bool = True,
    ) -> None:
        self.job = job
        self.show_video = show_video
        self.log_lines = max(0, log_lines)
        self.interval = interval
        self.save_dir = save_dir or "."
        self.status_html = widgets.HTML()
        self.notes_html = widgets.HTML(layout=widgets.Layout(display="none"))
        self.progress = widgets.FloatProgress(
            value=0.0, min=0.0, max=1.0, layout=widgets.Layout(width="100%", display="none")
        )
        self.log_html = widgets.HTML(layout=widgets.Layout(display="none"))
        self.cancel_button = widgets.Button(
            description="Cancel", icon="stop", tooltip="Cancel this request on the server"
        )
        self.save_button = widgets.Button(
            description="Save",
            icon="download",
            tooltip=f"Download the video into {self.save_dir}",
            layout=widgets.Layout(display="none"),
        )
        self.video_html = widgets.HTML()
        self.button_row = widgets.HBox([self.cancel_button, self.save_button])
        self.cancel_button.on_click(self._on_cancel_click)
        self.save_button.on_click(self._on_save_click)
        super().__init__(
            children=[
                self.status_html,
                self.notes_html,
                self.progress,
                self.log_html,
                self.button_row,
                self.video_html,
            ]
        )
        self.add_class("ltx-job-view")
        self._lock = threading.Lock()
        self._scheduled: ScheduledCall | None = None
        self._scheduled_at = 0.0
        self._last_flush = 0.0
        self._closed = False
        self.flushes = 0
        self._render()
        job.add_listener(self._on_change)
        if not job.done:
            self._schedule(_CLOCK_PERIOD)

    def __repr__(self) -> str:
        return self.job.status_line()

    # -- coalescing ------------------------------------------------------------------------

    def _on_change(self, job: Job) -> None:
        if job.done:
            self._cancel_scheduled()
            self._render()
            return
        wait = self._last_flush + self.interval - time.monotonic()
        self._schedule(max(wait, 0.0))

    def _schedule(self, delay: float) -> None:
        due = time.monotonic() + delay
        with self._lock:
            if self._closed:
                return
            if self._scheduled is not None:
                if self._scheduled_at <= due:
                    return
                # A change wants a render before the clock's next tick: bring it forward.
                self._scheduled.cancel()
            self._scheduled_at = due
            self._scheduled = self.job.session.runner.call_later(delay, self._scheduled_render)

    def _cancel_scheduled(self) -> None:
        with self._lock:
            scheduled, self._scheduled = self._scheduled, None
        if scheduled is not None:
            scheduled.cancel()

    def _scheduled_render(self) -> None:
        with self._lock:
            self._scheduled = None
        self._render()
        if not self.job.done:
            self._schedule(_CLOCK_PERIOD)

    # -- rendering -------------------------------------------------------------------------

    def _render(self) -> None:
        """Assign every trait from the job's current state (unchanged values send nothing)."""
        if self._closed:
            return
        job = self.job
        self._last_flush = time.monotonic()
        self.flushes += 1
        if job.notes:
            self.notes_html.value = "".join(
                f'<div class="ltx-note" style="font-size: 12px">&#9888; {escape(note)}</div>'
                for note in job.notes
            )
            self.notes_html.layout.display = None
        if job.progress is not None:
            done, total = job.progress
            self.progress.value = done / total
            self.progress.description = (
                f"{done}/{total}"
                if job.progress_stage == 1
                else f"{job.progress_stage}: {done}/{total}"
            )
            self.progress.layout.display = None
        elif job.status == JobStatus.UPLOADING and job.upload is not None:
            sent, total = job.upload
            self.progress.value = sent / total if total else 0.0
            self.progress.description = "upload"
            self.progress.layout.display = None
        elif self.progress.description == "upload":
            self.progress.layout.display = "none"  # uploaded; the steps' progress comes next
        if job.status == JobStatus.COMPLETED:
            self.progress.bar_style = "success"
            self.progress.value = 1.0
        elif job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
            self.progress.bar_style = "danger"
        if self.log_lines and job.logs:
            tail = [entry.message for entry in job.logs[-self.log_lines :]]
            self.log_html.value = _LOG_BOX.format(pre_html(tail))
            self.log_html.layout.display = None
        if job.done:
            self.cancel_button.layout.display = "none"
        if job.result is not None and self.show_video:
            self._render_video()
        # The status goes last: a front end that shows "completed" already has the final log,
        # progress and video (each trait is its own message, sent in assignment order).
        colour = _STATUS_COLOURS.get(job.status, "#888")
        self.status_html.value = (
            f'<span style="color: {colour}">&#9679;</span> '
            f'<span class="ltx-status">{escape(job.status_line())}</span>'
        )

    def _render_video(self) -> None:
        job = self.job
        assert job.result is not None
        src = video_source(job.result.url, job.saved_path)
        links = [link_html("open", job.result.url)]
        if job.saved_path is not None:
            links.append(f"saved to {escape(relative_src(job.saved_path))}")
        self.video_html.value = (
            video_html(src, caption=job_caption(job), width=640)
            + f'<div class="ltx-links" style="font-size: 12px">{" · ".join(links)}</div>'
        )
        self.save_button.layout.display = None if job.saved_path is None else "none"

    # -- buttons (kernel thread) -------------------------------------------------------------

    def _on_cancel_click(self, _button: Any = None) -> None:
        self.cancel_button.disabled = True
        self.cancel_button.description = "Cancelling…"
        self.job.cancel()

    def _on_save_click(self, _button: Any = None) -> None:
        self.save_button.disabled = True
        self.save_button.description = "Saving…"
        future = self.job.save_async(self.save_dir)

        def saved(_future: Any) -> None:
            self.save_button.disabled = False
            self.save_button.description = "Save"
            if _future.exception() is not None:
                self.save_button.tooltip = f"Saving failed: {_future.exception()}"
            self._render()

        future.add_done_callback(saved)

    def close(self) -> None:
        """Stop following the job and close the widgets."""
        self._closed = True
        self._cancel_scheduled()
        self.job.remove_listener(self._on_change)
        close_tree(self)


def follow_in_text(job: Job, stream: TextIO, *, period: float = 0.5) -> None:
    """Wait for ``job`` from the kernel thread, writing its status changes and log lines as
    text: the job view of a frontend without widgets (terminal IPython).

    An interrupt cancels the remote request and is raised again.
    """
    printed = 0
    notes = 0
    last_status = None
    last_upload = -1
    while True:
        for note in job.notes[notes:]:
            stream.write(f"ltx: note: {note}\n")
        notes = len(job.notes)
        logs = job.logs
        for entry in logs[printed:]:
            stream.write(f"  {entry.message}\n")
        printed = len(logs)
        # An upload's progress: a line per tenth of the file.
        upload = job.upload[0] * 10 // max(job.upload[1], 1) if job.upload else -1
        if job.status != last_status or upload != last_upload:
            last_status, last_upload = job.status, upload
            stream.write(job.status_line() + "\n")
        stream.flush()
        if job.done:
            return
        try:
            job.wait(timeout=period)
        except TimeoutError:
            continue
        except Exception:
            continue  # the job keeps its error; the loop prints the final status
