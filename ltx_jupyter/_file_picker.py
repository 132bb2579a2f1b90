"""A file chosen in the browser, received by the kernel in chunks: the panel's upload button.

ipywidgets' ``FileUpload`` sends the whole file in one websocket message. Jupyter Server closes
the kernel's websocket on a message over 10 MiB (tornado's ``websocket_max_message_size``), so
a phone photo never arrives: JupyterLab reconnects without a word, the button counts the file,
and the kernel keeps its old value. :class:`FilePicker` (an anywidget, front end in
``static/file_picker.js``) sends the file as 1 MiB chunks, a few in flight at once, each
acknowledged by the kernel, so a file of any size arrives under the limit with its progress
shown. The bytes go to a file in a temporary folder of this process, never into widget
state; the first bytes are read to tell the file's kind (:mod:`._files`), and a file that is
not the kind the field wants is refused at once, before the rest is sent.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import anywidget
import traitlets

from ._errors import InputError
from ._files import HEAD_BYTES, FileKind, check_kind, sniff

__all__ = ["CHUNK_BYTES", "FilePicker", "ReceivedFile", "upload_folder"]

#: Bytes per message from the browser: far under Jupyter Server's 10 MiB websocket limit.
CHUNK_BYTES = 1024 * 1024
_STATIC = Path(__file__).parent / "static"
_ACCEPT = {"image": "image/*", "video": "video/*", "audio": "audio/*"}
_UNSAFE_NAME = re.compile(r"[^\w.\- ]+")
_folder: Path | None = None
_folder_lock = threading.Lock()
_counter = 0


def upload_folder() -> Path:
    """Where received files are kept (one temporary folder per process, removed at exit)."""
    global _folder
    with _folder_lock:
        if _folder is None:
            _folder = Path(tempfile.mkdtemp(prefix="ltx-panel-uploads-"))
            import atexit

            atexit.register(shutil.rmtree, _folder, True)
        return _folder


def _new_path(name: str) -> Path:
    """A fresh file path for ``name`` (its own folder, so the name is kept as chosen)."""
    global _counter
    folder = upload_folder()
    with _folder_lock:
        _counter += 1
        place = folder / str(_counter)
    place.mkdir()
    safe = _UNSAFE_NAME.sub("_", Path(name).name).strip(" .") or "file"
    return place / safe


@dataclass(frozen=True)
class ReceivedFile:
    """A file that arrived whole: its name as chosen, where it is kept, its size and the media
    type its first bytes say."""

    name: str
    path: Path
    size: int
    content_type: str


@dataclass
class _Transfer:
    id: str
    name: str
    size: int
    path: Path
    handle: IO[bytes]
    received: int = 0
    head: bytes = b""
    checked: bool = False


class FilePicker(anywidget.AnyWidget):
    """An upload button whose file reaches the kernel in acknowledged chunks.

    ``kind`` is the kind of file wanted (``image``, ``video``, ``audio``; None: any), checked
    from the first bytes. ``on_start(name, size)``, ``on_file(ReceivedFile)`` and
    ``on_refused(name, reason)`` are called on the kernel thread as a transfer starts, ends
    whole, or is refused (wrong kind, empty, abandoned by the browser).
    """

    _esm = _STATIC / "file_picker.js"

    #: The file chooser's filter (``image/*``...).
    accept = traitlets.Unicode("").tag(sync=True)
    #: The button's label.
    description = traitlets.Unicode("file").tag(sync=True)
    #: Bytes per message from the browser.
    chunk_bytes = traitlets.Int(CHUNK_BYTES).tag(sync=True)

    def __init__(self, *, kind: FileKind | None = None, field: str = "file", **kwargs: Any) -> None:
        kwargs.setdefault("accept", _ACCEPT.get(kind or "", ""))
        kwargs.setdefault("description", kind or "file")
        super().__init__(**kwargs)
        self.kind = kind
        self.field = field
        self.on_start: Callable[[str, int], None] | None = None
        self.on_file: Callable[[ReceivedFile], None] | None = None
        self.on_refused: Callable[[str, str], None] | None = None
        self._transfer: _Transfer | None = None
        self.on_msg(self._on_front_end_message)

    @property
    def receiving(self) -> tuple[str, int, int] | None:
        """``(name, received, size)`` while a file is arriving, else None."""
        transfer = self._transfer
        return None if transfer is None else (transfer.name, transfer.received, transfer.size)

    # -- the front end's messages (kernel thread) --------------------------------------------

    def _on_front_end_message(
        self, _widget: Any, content: Any, buffers: Sequence[memoryview] | None
    ) -> None:
        if not isinstance(content, Mapping):
            return
        event = content.get("event")
        transfer_id = content.get("id")
        if not isinstance(transfer_id, str):
            return
        if event == "start":
            self._start(transfer_id, content.get("name"), content.get("size"))
        elif event == "chunk":
            transfer = self._transfer
            if transfer is not None and transfer.id == transfer_id:
                self._chunk(transfer, content.get("offset"), buffers or ())
        elif event == "abort":
            transfer = self._transfer
            if transfer is not None and transfer.id == transfer_id:
                reason = f"sending {transfer.name} stopped in the browser; choose it again"
                self._refuse(transfer, reason, tell=False)

    def _start(self, transfer_id: str, name: Any, size: Any) -> None:
        if self._transfer is not None:
            self._drop(self._transfer)
        shown = str(name) if isinstance(name, str) and name else "the file"
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            self._reply("refused", transfer_id, reason=f"{shown}: the browser gave no size")
            return
        path = _new_path(shown)
        transfer = _Transfer(transfer_id, shown, size, path, path.open("wb"))
        self._transfer = transfer
        if size == 0:
            self._refuse(transfer, f"{shown} is empty; choose a file with something in it")
            return
        if self.on_start is not None:
            self.on_start(shown, size)
        self._reply("ack", transfer_id, received=0)

    def _chunk(self, transfer: _Transfer, offset: Any, buffers: Sequence[memoryview]) -> None:
        data = b"".join(bytes(buffer) for buffer in buffers)
        if offset != transfer.received or transfer.received + len(data) > transfer.size:
            self._refuse(transfer, f"{transfer.name} arrived garbled; choose it again")
            return
        transfer.handle.write(data)
        transfer.received += len(data)
        if len(transfer.head) < HEAD_BYTES:
            transfer.head += data[: HEAD_BYTES - len(transfer.head)]
        ended = transfer.received == transfer.size
        if not transfer.checked and (len(transfer.head) >= HEAD_BYTES or ended):
            transfer.checked = True
            try:
                check_kind(self.field, transfer.name, transfer.head, self.kind)
            except InputError as error:
                self._refuse(transfer, error.errors[0].msg)
                return
        self._reply("ack", transfer.id, received=transfer.received)
        if ended:
            transfer.handle.close()
            self._transfer = None
            self._reply("done", transfer.id)
            received = ReceivedFile(
                transfer.name, transfer.path, transfer.size, sniff(transfer.head).content_type
            )
            if self.on_file is not None:
                self.on_file(received)

    def _refuse(self, transfer: _Transfer, reason: str, *, tell: bool = True) -> None:
        self._drop(transfer)
        if tell:
            self._reply("refused", transfer.id, reason=reason)
        if self.on_refused is not None:
            self.on_refused(transfer.name, reason)

    def _drop(self, transfer: _Transfer) -> None:
        """Forget a transfer and remove what arrived of it."""
        if self._transfer is transfer:
            self._transfer = None
        transfer.handle.close()
        with contextlib.suppress(OSError):
            os.remove(transfer.path)

    def _reply(self, event: str, transfer_id: str, **fields: Any) -> None:
        self.send({"event": event, "id": transfer_id, **fields})

    def close(self) -> None:
        transfer = getattr(self, "_transfer", None)  # close may come from __del__ of a half-built
        if transfer is not None:
            self._drop(transfer)
        super().close()
