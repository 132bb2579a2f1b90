"""Escaping and markup: what a prompt, a caption or a URL can and cannot do to a notebook."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from ltx_jupyter._html import (
    escape,
    is_http_url,
    link_html,
    pre_html,
    safe_video_src,
    table_html,
    video_html,
    video_mimebundle,
)

HOSTILE = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", '"><b x="', "it's & <ok>"]


class Tags(HTMLParser):
    """The elements a browser would build, with their attributes, and the text."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def names(self) -> list[str]:
        return [tag for tag, _ in self.tags]

    def one(self, name: str) -> dict[str, str | None]:
        (attrs,) = [a for tag, a in self.tags if tag == name]
        return attrs


@pytest.mark.parametrize("text", HOSTILE)
def test_escape_makes_any_text_inert(text: str) -> None:
    parsed = Tags(f'<p title="{escape(text)}">{escape(text)}</p>')
    assert parsed.names() == ["p"]
    assert parsed.one("p") == {"title": text}
    assert "".join(parsed.text) == text


def test_escape_accepts_non_strings() -> None:
    assert escape(3) == "3"
    assert escape(None) == "None"


@pytest.mark.parametrize(
    "src",
    [
        "https://v3.fal.media/files/fox/video.mp4",
        "http://localhost:8000/files/a.mp4",
        "HTTPS://V3.FAL.MEDIA/A.MP4",
        "data:video/mp4;base64,AAAAIGZ0eXBpc29t",
        "clip.mp4",
        "videos/clip.mp4",
        "./videos/clip.mp4",
        "../out/clip 1.mp4",
        "videos/at 12:30.mp4",
    ],
)
def test_allowed_video_sources(src: str) -> None:
    assert safe_video_src(src) == src


@pytest.mark.parametrize(
    "src",
    [
        "javascript:alert(1)",
        " JaVaScRiPt:alert(1)",
        "JAVASCRIPT:alert(1)",
        "java\tscript:alert(1)",
        "\x01javascript:alert(1)",
        "javascript:alert(1)\n",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
        "FILE:///C:/x.mp4",
        "data:text/html,<script>alert(1)</script>",
        "data:image/svg+xml;base64,PHN2Zz4=",
        "//evil.example/x.mp4",
        "\\\\evil.example\\x.mp4",
        "/home/me/video.mp4",
        "C:\\Users\\me\\video.mp4",
        "blob:https://x/1",
        "clip:1.mp4",
        "",
        "   ",
    ],
)
def test_refused_video_sources(src: str) -> None:
    with pytest.raises(ValueError, match="http:// or https:// URL, a data:video"):
        safe_video_src(src)


def test_refused_source_never_reaches_markup() -> None:
    with pytest.raises(ValueError):
        video_html("javascript:alert(1)")
    with pytest.raises(ValueError):
        video_mimebundle("file:///etc/passwd", text="x", metadata={})


def test_video_markup_defaults_to_a_quiet_player_with_controls() -> None:
    markup = video_html("https://v3.fal.media/a.mp4")
    parsed = Tags(markup)
    assert parsed.names() == ["figure", "video"]
    assert parsed.one("figure")["class"] == "ltx-video"
    video = parsed.one("video")
    assert video["src"] == "https://v3.fal.media/a.mp4"
    assert "controls" in video and "playsinline" in video
    assert video["preload"] == "metadata"
    assert not {"autoplay", "loop", "muted", "width"} & set(video)


def test_video_markup_options() -> None:
    video = Tags(
        video_html("a.mp4", controls=False, autoplay=True, loop=True, muted=True, width=640)
    ).one("video")
    assert {"autoplay", "loop", "muted"} <= set(video)
    assert "controls" not in video
    assert video["width"] == "640"
    video = Tags(video_html("a.mp4", width="50%")).one("video")
    assert "width" not in video and "width: 50%" in (video["style"] or "")
    assert Tags(video_html("a.mp4", width="320px")).one("video")["width"] == "320"
    for bad in (0, -3, True, "wide", "50%; background: url(x)", "1e3"):
        with pytest.raises(ValueError, match="width"):
            video_html("a.mp4", width=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("caption", HOSTILE)
def test_prompt_in_caption_is_shown_not_run(caption: str) -> None:
    parsed = Tags(video_html("https://v3.fal.media/a.mp4", caption=caption))
    assert parsed.names() == ["figure", "video", "figcaption"]
    assert "".join(parsed.text) == caption


def test_quotes_in_a_url_cannot_add_attributes() -> None:
    src = 'https://v3.fal.media/a.mp4" onerror="alert(1)'
    video = Tags(video_html(src)).one("video")
    assert video["src"] == src
    assert "onerror" not in video


def test_mimebundle_has_a_text_fallback_html_player_and_provenance() -> None:
    meta = {"request_id": "req-1", "endpoint": "fal-ai/ltx-video", "input": {"seed": 3}}
    data, md = video_mimebundle(
        "https://v3.fal.media/a.mp4",
        text="LTX video (req-1): https://v3.fal.media/a.mp4",
        caption="<b>fox</b>",
        metadata=meta,
        width=480,
    )
    assert set(data) == {"text/plain", "text/html"}
    assert data["text/plain"] == "LTX video (req-1): https://v3.fal.media/a.mp4"
    parsed = Tags(data["text/html"])
    assert parsed.one("video")["width"] == "480"
    assert "".join(parsed.text) == "<b>fox</b>"
    assert md == {"ltx_jupyter": meta}
    json.dumps([data, md])  # a notebook can store it


def test_mimebundle_is_accepted_by_ipython_display() -> None:
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.display import publish_display_data
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    ip = InteractiveShell.instance(config=config)
    shown = []
    try:
        ip.display_pub.publish = lambda data, metadata=None, **kw: shown.append((data, metadata))
        data, md = video_mimebundle("clip.mp4", text="clip", metadata={"request_id": "r"})
        publish_display_data(data, metadata=md)
    finally:
        InteractiveShell.clear_instance()
    assert shown == [(data, md)]


def test_table_cells_are_escaped_and_only_http_links_are_links() -> None:
    markup = table_html(
        ["id", "prompt", "video"],
        [
            ["r1", "<script>alert(1)</script>", ("open", "https://v3.fal.media/a.mp4")],
            ["r2", "<img src=x onerror=alert(1)>", ("open", "javascript:alert(1)")],
            ["r3", None, ("open", "//evil.example/x")],
        ],
    )
    parsed = Tags(markup)
    assert [t for t in parsed.names() if t not in ("tr", "td", "th")] == [
        "table",
        "thead",
        "tbody",
        "a",
    ]
    assert parsed.one("a")["href"] == "https://v3.fal.media/a.mp4"
    assert parsed.one("a")["rel"] == "noopener noreferrer"
    text = "".join(parsed.text)
    assert "<script>alert(1)</script>" in text and "<img src=x onerror=alert(1)>" in text


def test_table_link_columns_link_urls_to_themselves() -> None:
    rows = [["r1", "https://v3.fal.media/a.mp4"], ["r2", "file:///etc/passwd"]]
    for links in ({1: True}, {"url": True}):
        parsed = Tags(table_html(["id", "url"], rows, links=links))
        assert [a["href"] for tag, a in parsed.tags if tag == "a"] == ["https://v3.fal.media/a.mp4"]
    assert "<a" not in table_html(["id", "url"], rows)
    with pytest.raises(ValueError, match="nope"):
        table_html(["id"], [], links={"nope": True})


def test_link_html_links_only_http_urls() -> None:
    a = Tags(link_html("<open>", "https://v3.fal.media/a.mp4?x=1&y=2")).one("a")
    assert a["href"] == "https://v3.fal.media/a.mp4?x=1&y=2"
    assert a["target"] == "_blank" and a["rel"] == "noopener noreferrer"
    assert set(a) == {"href", "target", "rel", "style"}
    assert link_html("<open>", "javascript:alert(1)") == "&lt;open&gt;"
    assert link_html("open", None) == "open"


def test_is_http_url() -> None:
    assert is_http_url("https://x/y") and is_http_url("HTTP://x")
    for bad in ("javascript:x", " https://x", "https://x\n", "//x", "ftp://x", "", "x.mp4"):
        assert not is_http_url(bad)


def test_log_tail_block() -> None:
    lines = [
        "Loading <model> & weights\n",
        "\x1b[32mINFO\x1b[0m ready",
        " 10%|#         | 3/30\r 20%|##        | 6/30\r",
        "",
    ]
    parsed = Tags(pre_html(lines))
    assert parsed.names() == ["pre"]
    assert "".join(parsed.text) == "Loading <model> & weights\nINFO ready\n 20%|##        | 6/30\n"
    assert pre_html([]) == '<pre class="ltx-log"></pre>'
