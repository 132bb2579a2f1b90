"""What a person sees, read from the page: job view statuses, the log, the video playing."""

from __future__ import annotations

import time
from typing import Any

from ._jupyter import last_step, wait_until

# Records every text each job view's status line shows, per cell, as the DOM changes.
RECORD_STATUSES = """
() => {
  window.__ltxStatuses = {};
  const record = () => {
    const cells = [...document.querySelectorAll('.jp-Notebook .jp-Cell')];
    cells.forEach((cell, index) => {
      cell.querySelectorAll('.ltx-status').forEach((el, n) => {
        const key = `${index}.${n}`;
        const seen = (window.__ltxStatuses[key] ||= []);
        const text = el.textContent;
        if (seen[seen.length - 1] !== text) seen.push(text);
      });
    });
  };
  new MutationObserver(record).observe(document.body, {
    subtree: true, childList: true, characterData: true,
  });
}
"""

PLAY = """
async (video) => {
  video.muted = true;  // autoplay policy: a muted video may play without a user gesture
  await video.play();
}
"""


def record_statuses(page: Any) -> None:
    """Start recording the status lines of every job view on the page."""
    page.evaluate(RECORD_STATUSES)


def statuses(page: Any, cell: int) -> list[str]:
    """The status lines the job view in ``cell`` showed, in order."""
    return list(page.evaluate("key => window.__ltxStatuses[key] || []", f"{cell}.0"))


def status_words(lines: list[str]) -> list[str]:
    """The status word of each line, repeats collapsed (``ltx 1a2b · queued · 0.4s`` gives
    ``queued``)."""
    words = [parts[1] if len(parts := line.split(" · ")) > 1 else "" for line in lines]
    return [w for i, w in enumerate(words) if i == 0 or w != words[i - 1]]


def watch_log(view: Any, timeout: float = 60, settle: float = 1.0) -> list[int]:
    """Sample the view's log until its status says the job ended and the log has then stayed
    the same for ``settle`` seconds; the step numbers seen, in order.

    Each widget is its own model in the front end, so the status and the log widgets may
    repaint a frame apart: what counts is the log a person sees once the job has ended.
    """
    steps: list[int] = []
    deadline = time.monotonic() + timeout
    status = view.locator(".ltx-status")
    ended_at: float | None = None
    while time.monotonic() < deadline:
        text = status.inner_text()
        log = view.locator("pre.ltx-log")
        if log.count():
            step = last_step(log.inner_text())
            if not steps or step != steps[-1]:
                steps.append(step)
                if ended_at is not None:
                    ended_at = time.monotonic()
        if ended_at is None and any(w in text for w in ("completed", "failed", "cancelled")):
            ended_at = time.monotonic()
        if ended_at is not None and time.monotonic() - ended_at >= settle:
            return steps
        time.sleep(0.2)
    raise AssertionError(f"the job never finished; last status {status.inner_text()!r}")


def assert_log_scrolled_to_end(view: Any) -> None:
    """The log box shows its newest line (a person need not scroll to follow the job)."""
    box = view.locator(".ltx-log-box")
    geometry = box.evaluate(
        """box => {
          const lines = box.querySelector('pre.ltx-log');
          const b = box.getBoundingClientRect();
          const range = document.createRange();
          range.selectNodeContents(lines);
          const rects = [...range.getClientRects()];
          const last = rects[rects.length - 1];
          return {boxTop: b.top, boxBottom: b.bottom, lastTop: last.top,
                  lastBottom: last.bottom, text: lines.textContent,
                  display: getComputedStyle(box).display,
                  direction: getComputedStyle(box).flexDirection,
                  scrollTop: box.scrollTop, scrollHeight: box.scrollHeight,
                  clientHeight: box.clientHeight, html: box.outerHTML.slice(0, 300),
                  parent: box.parentElement.className};
        }"""
    )
    assert geometry["lastBottom"] <= geometry["boxBottom"] + 1, geometry
    assert geometry["lastTop"] >= geometry["boxTop"] - 1, geometry


def assert_video_plays(video: Any, timeout: float = 20) -> dict[str, Any]:
    """The ``<video>`` loads and plays: readyState reaches HAVE_ENOUGH_DATA and currentTime
    advances. Returns the video's state."""
    video.scroll_into_view_if_needed()
    video.evaluate(PLAY)
    first = wait_until(
        lambda: _video_state(video) if _video_state(video)["readyState"] >= 4 else None,
        timeout,
        "the video never reached HAVE_ENOUGH_DATA",
    )
    state = wait_until(
        lambda: (
            s
            if (s := _video_state(video))["currentTime"] > first["currentTime"] or s["ended"]
            else None
        ),
        timeout,
        "the video's currentTime never advanced",
    )
    assert state["error"] is None, state
    assert state["currentTime"] > 0, state
    assert state["videoWidth"] > 0 and state["duration"] > 0, state
    return state


def _video_state(video: Any) -> dict[str, Any]:
    return dict(
        video.evaluate(
            """v => ({readyState: v.readyState, currentTime: v.currentTime, ended: v.ended,
                      duration: v.duration, videoWidth: v.videoWidth, src: v.currentSrc,
                      error: v.error && v.error.message})"""
        )
    )
