"""Local files as endpoint inputs: which fields take one, what kind of file each wants, and what
kind a file is, read from its first bytes (its magic number), not from its name.

A field named for images (``image_url``, ``end_image_url``) wants an image, ``video_url`` a
video, ``audio_url`` a sound; any other ``*_url`` field takes any file. Such fields are found at
any depth: in conditioning items (``images[0].image_url``) and nested objects too.
The client checks each file again as it reads it for the upload, so a file changed or removed
after validation is caught before the paid submit.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ._errors import FieldError, InputError
from ._schema import image_kind

__all__ = [
    "HEAD_BYTES",
    "FileKind",
    "LocalFile",
    "Sniffed",
    "check_kind",
    "check_local_files",
    "field_kind",
    "local_files",
    "sniff",
]

FileKind = Literal["image", "video", "audio"]

#: Bytes read from the start of a file to tell its kind.
HEAD_BYTES = 64

_FORMATS: dict[FileKind, str] = {
    "image": "JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC or AVIF",
    "video": "MP4, MOV, WebM, MKV or AVI",
    "audio": "WAV, MP3, FLAC, OGG, M4A or AAC",
}
_KIND_WORD = {"image": "an image", "video": "a video", "audio": "a sound file"}

# ISO base media (MP4, MOV, HEIC, AVIF, M4A) files say what they hold by their "ftyp" brand.
_IMAGE_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A "}
_QUICKTIME_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}


@dataclass(frozen=True)
class Sniffed:
    """What a file's first bytes say it is: the kinds it may be, its media type, and a clause
    saying it ("it is a JPEG image")."""

    kinds: frozenset[FileKind]
    content_type: str
    says: str


@dataclass(frozen=True)
class LocalFile:
    """A local file given for an input field, where it sits in the input (``loc``: keys and
    list positions), and the kind of file the field wants. ``field`` is its dotted name."""

    field: str
    path: str
    kind: FileKind | None
    loc: tuple[str | int, ...] = ()


def _iso_media(head: bytes) -> Sniffed | None:
    if head[4:8] != b"ftyp":
        if head[4:8] in _QUICKTIME_ATOMS:
            return Sniffed(frozenset({"video"}), "video/quicktime", "it is a QuickTime movie")
        return None
    brand = head[8:12]
    if brand in _IMAGE_BRANDS:
        avif = brand.startswith(b"avi")
        return Sniffed(
            frozenset({"image"}),
            "image/avif" if avif else "image/heic",
            "it is an AVIF image" if avif else "it is a HEIC image",
        )
    if brand in _AUDIO_BRANDS:
        return Sniffed(frozenset({"audio"}), "audio/mp4", "it is an M4A sound file")
    if brand == b"qt  ":
        return Sniffed(frozenset({"video"}), "video/quicktime", "it is a QuickTime movie")
    return Sniffed(frozenset({"video"}), "video/mp4", "it is an MP4 video")


def _riff(head: bytes) -> Sniffed | None:
    if head[:4] != b"RIFF":
        return None
    form = head[8:12]
    if form == b"WEBP":
        return Sniffed(frozenset({"image"}), "image/webp", "it is a WebP image")
    if form == b"WAVE":
        return Sniffed(frozenset({"audio"}), "audio/wav", "it is a WAV sound file")
    if form.startswith(b"AVI"):
        return Sniffed(frozenset({"video"}), "video/x-msvideo", "it is an AVI video")
    return None


_PREFIXES: tuple[tuple[bytes, Sniffed], ...] = (
    (b"\xff\xd8\xff", Sniffed(frozenset({"image"}), "image/jpeg", "it is a JPEG image")),
    (b"\x89PNG\r\n\x1a\n", Sniffed(frozenset({"image"}), "image/png", "it is a PNG image")),
    (b"GIF87a", Sniffed(frozenset({"image"}), "image/gif", "it is a GIF image")),
    (b"GIF89a", Sniffed(frozenset({"image"}), "image/gif", "it is a GIF image")),
    (b"II*\x00", Sniffed(frozenset({"image"}), "image/tiff", "it is a TIFF image")),
    (b"MM\x00*", Sniffed(frozenset({"image"}), "image/tiff", "it is a TIFF image")),
    # Matroska and WebM hold video or sound; Ogg mostly sound, sometimes video.
    (
        b"\x1a\x45\xdf\xa3",
        Sniffed(frozenset({"video", "audio"}), "video/webm", "it is a WebM/Matroska file"),
    ),
    (b"OggS", Sniffed(frozenset({"audio", "video"}), "audio/ogg", "it is an Ogg file")),
    (b"fLaC", Sniffed(frozenset({"audio"}), "audio/flac", "it is a FLAC sound file")),
    (b"ID3", Sniffed(frozenset({"audio"}), "audio/mpeg", "it is an MP3 sound file")),
    (b"%PDF", Sniffed(frozenset(), "application/pdf", "it is a PDF document")),
    (b"PK\x03\x04", Sniffed(frozenset(), "application/zip", "it is a ZIP archive")),
)


def sniff(head: bytes) -> Sniffed:
    """What the first bytes of a file (at least :data:`HEAD_BYTES` of them, when the file has
    that many) say it is; ``kinds`` is empty for anything but an image, a video or a sound."""
    for prefix, sniffed in _PREFIXES:
        if head.startswith(prefix):
            return sniffed
    # BMP: "BM", the file size, then four reserved bytes that are zero.
    if head[:2] == b"BM" and len(head) >= 14 and head[6:10] == b"\x00" * 4:
        return Sniffed(frozenset({"image"}), "image/bmp", "it is a BMP image")
    found = _iso_media(head) or _riff(head)
    if found is not None:
        return found
    # An MPEG audio frame (MP3 without tags, AAC in ADTS) starts with 11 set sync bits.
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return Sniffed(frozenset({"audio"}), "audio/mpeg", "it is an MPEG sound file")
    if not head:
        return Sniffed(frozenset(), "application/octet-stream", "it is empty")
    if _is_text(head):
        return Sniffed(frozenset(), "text/plain", "it is text")
    return Sniffed(
        frozenset(), "application/octet-stream", "its first bytes match no image, video or sound"
    )


def _is_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 3:
            return False
        text = head[: error.start].decode("utf-8")  # a character cut at the end of the head
    return all(c.isprintable() or c.isspace() for c in text)


def field_kind(name: str, field_type: str | None = None) -> FileKind | None:
    """The kind of file the field ``name`` wants (None: any file)."""
    if field_type == "image":
        return "image"
    stem = name.lower()
    for kind in ("image", "video", "audio"):
        if kind in stem:
            return kind  # type: ignore[return-value]
    if "frame" in stem:
        return "image"
    return None


def check_kind(field: str, path: str, head: bytes, kind: FileKind | None) -> Sniffed:
    """What the file is; :class:`InputError` naming the field and the file when it is not
    the ``kind`` the field wants."""
    sniffed = sniff(head)
    if kind is None or kind in sniffed.kinds:
        return sniffed
    message = f"{path} is not {_KIND_WORD[kind]}: {sniffed.says}; give a {_FORMATS[kind]} file"
    raise InputError([FieldError(("body", field), message, "file_type")])


def local_files(endpoint_id: str, arguments: Mapping[str, Any]) -> Iterator[LocalFile]:
    """The local files among ``arguments`` that the client inlines or uploads: the values of
    ``*_url`` fields at any depth, each with the kind of file its field wants.

    A value there that is neither a URL (of any scheme) nor a data URI is a local path, even
    when no file is there (any more): reading it then says so, instead of the path being
    sent as if it were a URL.
    """
    yield from _walk(arguments, ())


def _walk(value: Any, loc: tuple[str | int, ...]) -> Iterator[LocalFile]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = (*loc, key)
            if isinstance(key, str) and key.endswith("_url") and _is_path(item):
                dotted = ".".join(str(part) for part in where)
                yield LocalFile(dotted, os.fspath(item).strip(), field_kind(key), where)
            else:
                yield from _walk(item, where)
    elif isinstance(value, list):
        for position, item in enumerate(value):
            yield from _walk(item, (*loc, position))


# Two characters at least before the colon: "C:" starts a Windows path, not a URL.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")


def _is_path(value: Any) -> bool:
    if isinstance(value, os.PathLike):
        return True
    if not isinstance(value, str) or not value.strip():
        return False
    return image_kind(value) in ("file", None) and not _SCHEME.match(value.strip())


def check_local_files(endpoint_id: str, arguments: Mapping[str, Any]) -> None:
    """Read the first bytes of each local file in ``arguments`` and raise :class:`InputError`
    (every bad field) when one is not the kind its field wants: before any request."""
    errors: list[FieldError] = []
    for local in local_files(endpoint_id, arguments):
        try:
            with open(local.path, "rb") as handle:
                head = handle.read(HEAD_BYTES)
            check_kind(local.field, local.path, head, local.kind)
        except InputError as error:
            errors += error.errors
        except OSError as error:
            reason = error.strerror or str(error)
            errors.append(
                FieldError(("body", local.field), f"{local.path} cannot be read ({reason})")
            )
    if errors:
        raise InputError(errors)
