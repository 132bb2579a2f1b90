"""Escaping and HTML markup: the one place where text becomes HTML.

Everything that reaches a ``text/html`` output goes through here. Text is escaped; URLs are
checked against a short allow-list of schemes before they become a ``src`` or ``href``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ._text import value_repr

__all__ = [
    "audio_html",
    "escape",
    "image_html",
    "is_http_url",
    "link_html",
    "pre_html",
    "safe_audio_src",
    "safe_image_src",
    "safe_video_src",
    "table_html",
    "video_html",
    "video_mimebundle",
]

METADATA_KEY = "ltx_jupyter"

# Browsers drop leading C0 controls and spaces from a URL and delete tabs and newlines anywhere
# in it, so " java\tscript:" is a javascript: URL. Refuse any such character instead of guessing.
_CONTROL_OR_SPACE_EDGE = re.compile(r"[\x00-\x1f\x7f]|^\s|\s$")
# A URL has a scheme if a ':' comes before the first '/', '?' or '#'.
_HAS_SCHEME = re.compile(r"^[^/?#]*:")
_WIDTH = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(px|%)?\s*$")
_ANSI_CSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")

_SRC_RULE = (
    "a video source must be an http:// or https:// URL, a data:video/… URI, "
    "or a relative path such as videos/clip.mp4"
)


def escape(text: object) -> str:
    """``text`` (converted with ``str``) escaped for HTML content and quoted attributes."""
    return html.escape(str(text), quote=True)


def _clean(url: str) -> str | None:
    if not isinstance(url, str) or not url or _CONTROL_OR_SPACE_EDGE.search(url):
        return None
    return url


def is_http_url(url: str) -> bool:
    """Whether ``url`` is a plain ``http://`` or ``https://`` URL safe to use as a link."""
    clean = _clean(url)
    return clean is not None and clean.lower().startswith(("http://", "https://"))


def safe_video_src(src: str) -> str:
    """``src`` unchanged if it may be a video's source, else ``ValueError``.

    Allowed: ``http://`` and ``https://`` URLs, ``data:video/…`` URIs, and relative paths
    (``clip.mp4``, ``videos/clip.mp4``, ``./clip.mp4``, ``../clip.mp4``). Refused: every other
    scheme (``javascript:``, ``file:``, ``vbscript:``, ``data:text/html``, Windows drive paths),
    absolute paths, scheme-relative ``//host`` URLs, and anything with control characters or
    leading or trailing whitespace. The result is not escaped: the markup builders do that.
    """
    clean = _clean(src)
    if clean is None:
        raise ValueError(f"{_SRC_RULE}; got {value_repr(src)}")
    lowered = clean.lower()
    if lowered.startswith(("http://", "https://", "data:video/")):
        return clean
    if _HAS_SCHEME.match(clean) or clean.startswith(("/", "\\")):
        raise ValueError(f"{_SRC_RULE}; got {value_repr(src)}")
    return clean


def _base64_data_uri(kind: str) -> re.Pattern[str]:
    return re.compile(rf"data:{kind}/[\w.+-]+(?:;[\w.+=-]+)*;base64,[A-Za-z0-9+/]*={{0,2}}")


_DATA_IMAGE_URI = _base64_data_uri("image")
_DATA_AUDIO_URI = _base64_data_uri("audio")


def safe_image_src(src: str) -> str | None:
    """``src`` if it may be an ``<img src>`` (an http(s) URL or a base64 ``data:image/`` URI),
    else None."""
    if is_http_url(src) or _DATA_IMAGE_URI.fullmatch(src):
        return src
    return None


def image_html(src: str, *, alt: str, max_width: int, max_height: int) -> str:
    """An ``<img>`` for ``src`` (which must pass :func:`safe_image_src`), with escaped alt text."""
    if safe_image_src(src) is None:
        raise ValueError("an image source must be an http(s) URL or a data:image/ URI")
    return (
        f'<img src="{escape(src)}" alt="{escape(alt)}" '
        f'style="max-width: {int(max_width)}px; max-height: {int(max_height)}px; '
        'object-fit: contain">'
    )


def safe_audio_src(src: str) -> str | None:
    """``src`` if it may be an ``<audio src>`` (an http(s) URL or a base64 ``data:audio/``
    URI), else None."""
    if is_http_url(src) or _DATA_AUDIO_URI.fullmatch(src):
        return src
    return None


def audio_html(src: str) -> str:
    """An ``<audio>`` player for ``src`` (which must pass :func:`safe_audio_src`)."""
    if safe_audio_src(src) is None:
        raise ValueError("an audio source must be an http(s) URL or a data:audio/ URI")
    return f'<audio controls preload="metadata" src="{escape(src)}"></audio>'


def video_html(
    src: str,
    *,
    caption: str | None = None,
    width: int | str | None = None,
    controls: bool = True,
    autoplay: bool = False,
    loop: bool = False,
    muted: bool = False,
) -> str:
    """A ``<figure>`` holding a ``<video>`` for ``src`` and an optional escaped caption.

    ``src`` must pass :func:`safe_video_src`. ``width`` is pixels (``640``, ``"640px"``) or a
    percentage (``"50%"``). Browsers play ``autoplay`` videos only when they are ``muted``.
    """
    attrs = [f'src="{escape(safe_video_src(src))}"']
    attrs += [name for name, on in (("controls", controls), ("autoplay", autoplay)) if on]
    attrs += [name for name, on in (("loop", loop), ("muted", muted)) if on]
    attrs += ["playsinline", 'preload="metadata"']
    style = "max-width: 100%"
    if width is not None:
        number, unit = _parse_width(width)
        if unit == "%":
            style += f"; width: {number}%"
        else:
            attrs.append(f'width="{number}"')
    attrs.append(f'style="{style}"')
    parts = [f'<figure class="ltx-video" style="margin: 0"><video {" ".join(attrs)}></video>']
    if caption is not None:
        parts.append(f"<figcaption>{escape(caption)}</figcaption>")
    parts.append("</figure>")
    return "".join(parts)


def _parse_width(width: int | str) -> tuple[str, str]:
    if isinstance(width, bool):
        raise ValueError(f"width must be pixels or a percentage, got {width!r}")
    if isinstance(width, int):
        if width <= 0:
            raise ValueError(f"width must be positive, got {width}")
        return str(width), "px"
    match = _WIDTH.match(str(width))
    if not match or float(match.group(1)) <= 0:
        raise ValueError(
            f"width must be pixels (640, '640px') or a percentage ('50%'), got {width!r}"
        )
    number, unit = match.group(1), match.group(2) or "px"
    if unit == "px":
        number = str(round(float(number)))
    return number, unit


def video_mimebundle(
    src: str,
    *,
    text: str,
    caption: str | None = None,
    metadata: Mapping[str, Any],
    **video_options: Any,
) -> tuple[dict[str, str], dict[str, Any]]:
    """``(data, metadata)`` showing a video: ``text/plain`` for viewers without HTML and
    ``text/html`` from :func:`video_html`; the metadata sits under ``"ltx_jupyter"``.

    Return it from ``_repr_mimebundle_`` or pass it to ``IPython.display.publish_display_data``.
    ``video_options`` (``width``, ``autoplay``, …) go to :func:`video_html`.
    """
    data = {
        "text/plain": text,
        "text/html": video_html(src, caption=caption, **video_options),
    }
    return data, {METADATA_KEY: dict(metadata)}


def table_html(
    headers: Sequence[object],
    rows: Iterable[Sequence[object]],
    *,
    links: Mapping[int | str, bool] | None = None,
) -> str:
    """A small HTML table; every cell is escaped.

    A cell given as ``(text, href)`` is a link when ``href`` is an http(s) URL, plain text
    otherwise. ``links`` names columns (by index or header) whose plain string cells that are
    http(s) URLs link to themselves. ``None`` cells are empty.
    """
    link_columns = set()
    for key, on in (links or {}).items():
        if on:
            link_columns.add(key if isinstance(key, int) else _index(headers, key))
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            f"<td>{_cell(value, i in link_columns)}</td>" for i, value in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return (
        f'<table class="ltx-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _index(headers: Sequence[object], name: str) -> int:
    for i, header in enumerate(headers):
        if str(header) == name:
            return i
    raise ValueError(f"links names column {name!r}, which is not among the headers")


def _cell(value: object, autolink: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple) and len(value) == 2:
        text, href = value
        return link_html(text, href)
    if autolink and isinstance(value, str):
        return link_html(value, value)
    return escape(value)


def link_html(text: object, href: object) -> str:
    """``<a href=…>text</a>`` opening in a new tab if ``href`` is an http(s) URL (see
    :func:`is_http_url`); otherwise just the escaped ``text``, so a bad URL never becomes a link.
    """
    if isinstance(href, str) and is_http_url(href):
        attrs = f'href="{escape(href)}" target="_blank" rel="noopener noreferrer"'
        # JupyterLab's output styles leave links uncoloured: say it is one.
        style = 'style="color: var(--jp-content-link-color, #1a73e8); text-decoration: underline"'
        return f"<a {attrs} {style}>{escape(text)}</a>"
    return escape(text)


def pre_html(lines: Iterable[str]) -> str:
    """An escaped ``<pre>`` block of log lines.

    Terminal colour codes are removed, and for a line redrawn with carriage returns (a progress
    bar) only its last state is kept, as a terminal would show it.
    """
    shown = []
    for line in lines:
        line = _ANSI_CSI.sub("", str(line)).rstrip("\r\n")
        redraws = [part for part in line.split("\r") if part]
        shown.append(redraws[-1] if redraws else "")
    return f'<pre class="ltx-log">{escape(chr(10).join(shown))}</pre>'
