"""The browser's side of the panel's file picker (``static/file_picker.js``), played in Python:
a file sent as the front end sends it (start, then chunks in order, each waiting for its
acknowledgement), the kernel's replies recorded. Used where no browser runs; the browser
tests drive the real front end."""

from __future__ import annotations

import itertools
from typing import Any

from ltx_jupyter._file_picker import CHUNK_BYTES, FilePicker

__all__ = ["PickerFrontEnd", "send_file"]

_ids = itertools.count(1)


class PickerFrontEnd:
    """Talks to one :class:`FilePicker` as its front end does; ``replies`` holds what the
    kernel sent back."""

    def __init__(self, picker: FilePicker) -> None:
        self.picker = picker
        self.replies: list[dict[str, Any]] = []
        picker.send = self._receive  # type: ignore[method-assign]

    def _receive(self, content: dict[str, Any], buffers: Any = None) -> None:
        self.replies.append(content)

    def message(self, content: dict[str, Any], data: bytes | None = None) -> None:
        """One message from the browser (``data`` as its binary buffer)."""
        self.picker._handle_custom_msg(content, [memoryview(data)] if data is not None else [])

    def start(self, name: str, size: int, kind: str = "") -> str:
        transfer = f"t{next(_ids)}"
        self.message({"event": "start", "id": transfer, "name": name, "size": size, "type": kind})
        return transfer

    def send_file(
        self, name: str, content: bytes, *, chunk: int = CHUNK_BYTES, stop_after: int | None = None
    ) -> list[dict[str, Any]]:
        """Send ``content`` as file ``name`` in chunks of ``chunk`` bytes, each after the
        previous one's acknowledgement, as the front end does; stops when the kernel refuses
        it, or after ``stop_after`` chunks. The kernel's replies to this transfer."""
        transfer = self.start(name, len(content))
        return self.send_chunks(transfer, content, chunk=chunk, count=stop_after)

    def send_chunks(
        self, transfer: str, content: bytes, *, chunk: int = CHUNK_BYTES, count: int | None = None
    ) -> list[dict[str, Any]]:
        """Send up to ``count`` more chunks of a started transfer (all that are left by
        default), from where the kernel's last acknowledgement says it is."""
        sent = 0
        while count is None or sent < count:
            replies = self._of(transfer)
            last = replies[-1] if replies else {}
            offset = int(last.get("received", -1))
            if last.get("event") != "ack" or offset >= len(content):
                break
            piece = content[offset : offset + chunk]
            self.message({"event": "chunk", "id": transfer, "offset": offset}, piece)
            sent += 1
        return self._of(transfer)

    def _of(self, transfer: str) -> list[dict[str, Any]]:
        return [reply for reply in self.replies if reply.get("id") == transfer]


def send_file(control: Any, name: str, content: bytes, **options: Any) -> list[dict[str, Any]]:
    """Send a file through a file control's picker, as a person choosing it in the browser."""
    front = getattr(control.upload, "_test_front_end", None)
    if front is None:
        front = PickerFrontEnd(control.upload)
        control.upload._test_front_end = front
    return front.send_file(name, content, **options)
