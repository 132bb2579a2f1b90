"""Files under the server's data directory: each request's outputs and each upload.

Layout::

    data_dir/files/<id>/<name>          outputs (id = request id) and uploads (id = upload id)
    data_dir/uploads/<upload id>.json   an upload's name and content type, from initiate
    data_dir/requests/<request id>.json each request's record (the queue's state), written
                                        atomically so a restart loses no request

Ids and names are checked against strict patterns and the resolved path must stay inside
``data_dir/files``, so no URL can reach another file.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Storage", "UploadInfo", "safe_file_name"]

logger = logging.getLogger(__name__)

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


def safe_file_name(name: str | None, default: str = "upload.bin") -> str:
    """A file name that matches the served-name pattern, derived from ``name``."""
    base = os.path.basename((name or "").replace("\\", "/"))
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip("._-")[:128]
    return cleaned if cleaned and _NAME.match(cleaned) else default


@dataclass(frozen=True)
class UploadInfo:
    """An initiated upload: its id, the name it is served under, and its content type."""

    upload_id: str
    file_name: str
    content_type: str


class Storage:
    """The data directory: where outputs and uploads live and how they are looked up safely."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.files_root = self.root / "files"
        self.uploads_root = self.root / "uploads"
        self.requests_root = self.root / "requests"
        for folder in (self.files_root, self.uploads_root, self.requests_root):
            folder.mkdir(parents=True, exist_ok=True)

    def output_dir(self, request_id: str) -> Path:
        """The (created) directory for ``request_id``'s output files."""
        if not _ID.match(request_id):
            raise ValueError(f"invalid request id {request_id!r}")
        path = self.files_root / request_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def resolve(self, owner_id: str, name: str) -> Path | None:
        """The existing file ``name`` of a request or upload, or None (also for unsafe names)."""
        if not _ID.match(owner_id) or not _NAME.match(name):
            return None
        path = (self.files_root / owner_id / name).resolve()
        if not path.is_relative_to(self.files_root) or not path.is_file():
            return None
        return path

    def content_type(self, owner_id: str, name: str) -> str:
        """The content type to serve a file with: the upload's own, else guessed from the name."""
        info = self.upload_info(owner_id)
        if info is not None and info.file_name == name:
            return info.content_type
        guessed, _ = mimetypes.guess_type(name)
        return guessed or "application/octet-stream"

    def new_upload(self, file_name: str | None, content_type: str | None) -> UploadInfo:
        """Record an upload's name and type; the bytes follow with :meth:`write_upload`."""
        info = UploadInfo(
            upload_id=uuid.uuid4().hex,
            file_name=safe_file_name(file_name),
            content_type=(content_type or "application/octet-stream").strip()[:200],
        )
        meta = {"file_name": info.file_name, "content_type": info.content_type}
        (self.uploads_root / f"{info.upload_id}.json").write_text(json.dumps(meta))
        return info

    def upload_info(self, upload_id: str) -> UploadInfo | None:
        """An initiated upload, or None if ``upload_id`` is unknown."""
        if not _ID.match(upload_id):
            return None
        try:
            meta = json.loads((self.uploads_root / f"{upload_id}.json").read_text())
        except (OSError, ValueError):
            return None
        return UploadInfo(upload_id, meta["file_name"], meta["content_type"])

    def upload_path(self, info: UploadInfo) -> Path:
        """Where an upload's bytes go (its directory is created)."""
        return self.output_dir(info.upload_id) / info.file_name

    def path_for_url_path(self, url_path: str) -> Path | None:
        """The stored file behind a ``/files/<id>/<name>`` URL path, or None."""
        parts = url_path.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "files":
            return None
        return self.resolve(parts[1], parts[2])

    # -- the queue's records -----------------------------------------------------------------

    def save_request(self, request_id: str, record: dict[str, Any]) -> None:
        """Write a request's record atomically (a crash leaves the old or the new file whole)."""
        if not _ID.match(request_id):
            raise ValueError(f"invalid request id {request_id!r}")
        target = self.requests_root / f"{request_id}.json"
        partial = target.with_name(f"{request_id}.json.partial")
        data = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        with partial.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(target)

    def load_requests(self) -> list[dict[str, Any]]:
        """Every saved request record; unreadable files are logged and skipped."""
        records = []
        for path in sorted(self.requests_root.glob("*.json")):
            try:
                record = json.loads(path.read_bytes())
            except (OSError, ValueError) as error:
                logger.warning("skipping unreadable request record %s: %s", path.name, error)
                continue
            if isinstance(record, dict) and record.get("request_id") == path.stem:
                records.append(record)
            else:
                logger.warning("skipping malformed request record %s", path.name)
        return records
