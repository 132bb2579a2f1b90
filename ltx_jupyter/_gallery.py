"""``%ltx gallery``: every run in the history as pages of posters, newest first.

Opening reads the journal once (:meth:`HistoryStore.entries`), filters it by text, endpoint
and status, and draws one page; nothing goes over the network for it, so 5,000 runs open as
fast as 50. A tile shows the run's poster (its first frame) from the poster cache in the user
cache directory, or a placeholder; posters missing from the cache are made in the background
for the tiles on screen only (the video read from a saved file or its URL, the first frame
decoded with PyAV, kept as a small JPEG). Each tile plays its video, copies the run as a
``%%ltx`` cell, can be ticked for a comparison, and (with an ``on_load`` callback, as the
panel gives one) loads its parameters somewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from IPython.core.error import UsageError
from IPython.display import display

from ._display import entry_cost, video_caption
from ._fal import split_endpoint_id
from ._html import escape, image_html, is_http_url, video_html
from ._parsing import magic_cell
from ._schema import resolve_endpoint, short_endpoint
from ._text import counted, shorten
from ._widgets import close_tree, offer_cell

if TYPE_CHECKING:
    from ._compare import CompareView
    from ._history import HistoryEntry
    from ._jobs import Job, JobSession

__all__ = [
    "STATUSES",
    "Gallery",
    "GalleryFilter",
    "PosterCache",
    "filter_runs",
    "gallery",
    "poster_from_video",
]

#: Statuses a run can have in the gallery (``--status``).
STATUSES = ("queued", "running", "completed", "failed", "cancelled", "detached", "unknown")
DEFAULT_PAGE_SIZE = 12
#: A poster's longest side, in pixels.
POSTER_SIZE = 240
#: The largest video read to make a poster.
MAX_VIDEO_BYTES = 64 * 1024 * 1024
_POSTER_SECONDS = 15.0
_TILE_WIDTH = "250px"
_MUTED = "#777"
_PLACEHOLDER = (
    '<div class="ltx-poster-placeholder" style="width: 240px; height: 135px; display: flex; '
    "align-items: center; justify-content: center; background: #eee; color: #888; "
    'font-size: 11px">{}</div>'
)


# -- selecting runs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class GalleryFilter:
    """Which runs a gallery shows: ``text`` in the prompt (or the request id's start), an
    endpoint (and the endpoints under it), a status; empty means any."""

    text: str = ""
    endpoint: str = ""
    status: str = ""

    def describe(self) -> str:
        parts = [f"matching {self.text!r}"] if self.text else []
        parts += [f"on {self.endpoint}"] if self.endpoint else []
        parts += [f"{self.status}"] if self.status else []
        return " ".join(parts)


def run_status(entry: HistoryEntry, live: Mapping[str, Job]) -> str:
    """A run's status: its live job's when it is followed in this session, else the
    history's."""
    job = live.get(entry.request_id)
    if job is not None:
        return str(job.status)
    return (entry.status or "unknown").lower()


def filter_runs(
    entries: Sequence[HistoryEntry], where: GalleryFilter, live: Mapping[str, Job]
) -> list[HistoryEntry]:
    """The entries ``where`` selects, in their order (the history's: newest first)."""
    text = where.text.lower()
    endpoint = where.endpoint
    found = []
    for entry in entries:
        if text and text not in entry.prompt.lower() and not entry.request_id.startswith(text):
            continue
        under = entry.endpoint == endpoint or entry.endpoint.startswith(endpoint + "/")
        if endpoint and not under:
            continue
        if where.status and run_status(entry, live) != where.status:
            continue
        found.append(entry)
    return found


# -- posters -------------------------------------------------------------------------------------


def poster_from_video(source: bytes | str | os.PathLike[str], size: int = POSTER_SIZE) -> bytes:
    """The first frame of a video (its bytes or a file path), scaled to fit ``size`` pixels,
    as JPEG bytes; ``ValueError`` if it holds no decodable frame. Needs PyAV."""
    import io

    import av

    opened = av.open(io.BytesIO(source) if isinstance(source, bytes) else os.fspath(source))
    try:
        frame = next(opened.decode(video=0), None)
    except av.error.FFmpegError as error:  # type: ignore[attr-defined]
        raise ValueError(f"the video cannot be decoded: {error}") from None
    finally:
        opened.close()
    if frame is None:
        raise ValueError("the video holds no frame")
    scale = min(1.0, size / max(frame.width, frame.height))
    width = max(2, int(frame.width * scale) // 2 * 2)
    height = max(2, int(frame.height * scale) // 2 * 2)
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuvj420p"
    image = frame.reformat(width=width, height=height, format="yuvj420p")
    packets = [*encoder.encode(image), *encoder.encode(None)]
    return b"".join(bytes(p) for p in packets)


class PosterCache:
    """Posters on disk, one JPEG per video source, in ``folder`` (default: ``posters`` in the
    user cache directory)."""

    def __init__(self, folder: str | os.PathLike[str] | None = None) -> None:
        if folder is None:
            from ._pricing import default_cache_dir

            folder = default_cache_dir() / "posters"
        self.folder = Path(folder)

    def path(self, source: str) -> Path:
        digest = hashlib.sha256(source.encode()).hexdigest()[:32]
        return self.folder / f"{digest}.jpg"

    def get(self, source: str) -> bytes | None:
        """The cached poster of ``source``, or None (a disk read, nothing more)."""
        try:
            return self.path(source).read_bytes()
        except OSError:
            return None

    def put(self, source: str, poster: bytes) -> None:
        """Keep ``poster`` for ``source`` (written whole, then renamed into place)."""
        target = self.path(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        partial.write_bytes(poster)
        os.replace(partial, target)

    def make(self, source: str, saved: Path | None = None) -> bytes:
        """The poster of ``source`` (a video URL) made now from ``saved`` (the same video as
        a local file) or downloaded, and cached; ``ValueError``/``OSError`` if it cannot be."""
        if saved is not None and saved.is_file():
            poster = poster_from_video(saved)
        elif is_http_url(source):
            poster = poster_from_video(_download(source))
        else:
            raise ValueError("no reachable video")
        self.put(source, poster)
        return poster


def _download(url: str) -> bytes:
    import httpx

    data = bytearray()
    with httpx.stream("GET", url, timeout=_POSTER_SECONDS, follow_redirects=True) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) > MAX_VIDEO_BYTES:
                raise ValueError("the video is too large to make a poster from")
    return bytes(data)


def poster_html(poster: bytes | None, note: str = "no poster") -> str:
    """A tile's picture: the poster as an ``<img>``, or a placeholder saying ``note``."""
    if poster is None:
        return _PLACEHOLDER.format(escape(note))
    src = "data:image/jpeg;base64," + base64.b64encode(poster).decode("ascii")
    return image_html(src, alt="first frame", max_width=240, max_height=240)


# -- the gallery ---------------------------------------------------------------------------------


def key_parameters(entry: HistoryEntry) -> str:
    """The parameters a tile shows: seed, steps, guidance, size and length where given, and
    the estimated cost (:func:`video_caption`'s form)."""
    extra = []
    for name in ("resolution", "aspect_ratio", "duration", "num_frames"):
        value = entry.input.get(name)
        if value is not None:
            extra.append(f"{name.replace('_', ' ')} {value}")
    caption = video_caption(entry.input, seed=entry.seed, cost=entry_cost(entry))
    return " · ".join(p for p in (caption, *extra) if p)


class _Tile:
    """One tile of a page; reused from page to page."""

    def __init__(self, gallery: Gallery, slot: int) -> None:
        self.entry: HistoryEntry | None = None
        self.playing = False
        self.picture = widgets.HTML(layout=widgets.Layout(min_height="135px"))
        self.info = widgets.HTML()
        self.play_button = widgets.Button(
            description="play", icon="play", tooltip="Play this run's video here",
            layout=widgets.Layout(width="auto"),
        )  # fmt: skip
        self.copy_button = widgets.Button(
            description="copy as %%ltx", icon="copy",
            tooltip="Put the equivalent %%ltx cell into the next cell",
            layout=widgets.Layout(width="auto"),
        )  # fmt: skip
        self.load_button = widgets.Button(
            description="load", icon="upload", tooltip="Load this run's parameters",
            layout=widgets.Layout(width="auto", display=None if gallery.on_load else "none"),
        )  # fmt: skip
        self.tick = widgets.Checkbox(
            description="compare", indent=False, layout=widgets.Layout(width="auto")
        )
        self.play_button.on_click(lambda _b: gallery.toggle_play(slot))
        self.copy_button.on_click(lambda _b: gallery.copy_as_magic(slot))
        self.load_button.on_click(lambda _b: gallery.load(slot))
        self.tick.observe(lambda change: gallery._ticked(slot, change["new"]), names="value")
        self.box = widgets.VBox(
            [
                self.picture,
                self.info,
                widgets.HBox(
                    [self.play_button, self.copy_button, self.load_button, self.tick],
                    layout=widgets.Layout(flex_flow="row wrap"),
                ),
            ],
            layout=widgets.Layout(
                width=_TILE_WIDTH, padding="4px", margin="3px", border="1px solid #ddd"
            ),
        )
        self.box.add_class("ltx-tile")


class Gallery(widgets.VBox):
    """Pages of tiles for history entries (already filtered, newest first).

    ``on_load(endpoint, input)`` is called by a tile's "load" button (hidden without it): the
    panel passes its ``load_input``. ``shell`` receives "copy as %%ltx" as its next input.
    """

    def __init__(
        self,
        entries: Sequence[HistoryEntry],
        *,
        session: JobSession,
        title: str = "",
        page_size: int = DEFAULT_PAGE_SIZE,
        on_load: Callable[[str, dict[str, Any]], Any] | None = None,
        posters: PosterCache | None = None,
        shell: Any = None,
        make_posters: bool = True,
    ) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {page_size}")
        self.entries = list(entries)
        self.session = session
        self.title = title
        self.page_size = page_size
        self.on_load = on_load
        self.posters = posters or PosterCache()
        self.shell = shell
        self.make_posters = make_posters
        self.page = 0
        self.selected: dict[str, HistoryEntry] = {}
        self.last_copied: str | None = None
        self._generation = 0
        self._failed: set[str] = set()
        self._setting_ticks = False
        self.header = widgets.HTML()
        self.prev_button = widgets.Button(description="newer", icon="arrow-left")
        self.next_button = widgets.Button(description="older", icon="arrow-right")
        self.compare_button = widgets.Button(
            description="compare ticked", icon="columns", disabled=True,
            tooltip="Show the ticked runs side by side in one player",
        )  # fmt: skip
        self.prev_button.on_click(lambda _b: self.show_page(self.page - 1))
        self.next_button.on_click(lambda _b: self.show_page(self.page + 1))
        self.compare_button.on_click(lambda _b: self.compare())
        self.tiles = [_Tile(self, i) for i in range(min(page_size, max(len(self.entries), 1)))]
        self.tile_box = widgets.Box(
            [t.box for t in self.tiles],
            layout=widgets.Layout(display="flex", flex_flow="row wrap"),
        )
        self.copied_cell = widgets.Textarea(
            description="copied", layout=widgets.Layout(width="100%", display="none")
        )
        self.compare_box = widgets.VBox()
        super().__init__(
            [
                self.header,
                widgets.HBox([self.prev_button, self.next_button, self.compare_button]),
                self.tile_box,
                self.copied_cell,
                self.compare_box,
            ]
        )
        self.add_class("ltx-gallery")
        self.show_page(0)

    # -- pages -----------------------------------------------------------------------------

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.entries) // self.page_size))

    def page_entries(self, page: int | None = None) -> list[HistoryEntry]:
        """The entries on ``page`` (default: the one shown)."""
        page = self.page if page is None else page
        return self.entries[page * self.page_size : (page + 1) * self.page_size]

    def status_line(self) -> str:
        count = len(self.entries)
        line = f"ltx gallery · {counted(count, 'run')}"
        if self.title:
            line += f" {self.title}"
        if count:
            line += f" · page {self.page + 1} of {self.pages}"
        if self.selected:
            line += f" · {len(self.selected)} ticked"
        return line

    def show_page(self, page: int) -> None:
        """Show page ``page`` (clamped): each tile's poster from the cache or a placeholder,
        with the missing posters made in the background."""
        self.page = min(max(page, 0), self.pages - 1)
        self._generation += 1
        shown = self.page_entries()
        missing = []
        self._setting_ticks = True
        try:
            for slot, tile in enumerate(self.tiles):
                entry = shown[slot] if slot < len(shown) else None
                tile.entry = entry
                tile.playing = False
                tile.box.layout.display = None if entry is not None else "none"
                if entry is None:
                    continue
                tile.info.value = self._info_html(entry)
                tile.tick.value = entry.request_id in self.selected
                tile.play_button.description = "play"
                tile.play_button.disabled = not entry.video_url
                poster = self.posters.get(entry.video_url) if entry.video_url else None
                if poster is None and entry.video_url and entry.video_url not in self._failed:
                    missing.append((slot, entry))
                    tile.picture.value = poster_html(None, "poster on its way")
                else:
                    note = "no video" if not entry.video_url else "no poster"
                    tile.picture.value = poster_html(poster, note)
        finally:
            self._setting_ticks = False
        self.prev_button.disabled = self.page == 0
        self.next_button.disabled = self.page >= self.pages - 1
        self._update_header()
        if missing and self.make_posters:
            self.session.runner.submit(self._make_posters(self._generation, missing))

    async def _make_posters(self, generation: int, missing: list[tuple[int, HistoryEntry]]) -> None:
        live = {job.request_id: job for job in self.session.jobs if job.request_id}
        for slot, entry in missing:
            if generation != self._generation:
                return
            assert entry.video_url is not None
            job = live.get(entry.request_id)
            saved = job.saved_path if job is not None else None
            try:
                poster: bytes | None = await asyncio.to_thread(
                    self.posters.make, entry.video_url, saved
                )
            except Exception:  # unreachable, expired, not a video, no PyAV: a placeholder
                self._failed.add(entry.video_url)
                poster = None
            tile = self.tiles[slot]
            if generation == self._generation and tile.entry is entry and not tile.playing:
                tile.picture.value = poster_html(poster, "no poster")

    def _info_html(self, entry: HistoryEntry) -> str:
        status = str(self._status(entry))
        endpoint = short_endpoint(entry.endpoint)
        muted = f'<div style="font-size: 11px; color: {_MUTED}">{{}}</div>'
        return (
            f'<div style="font-size: 12px">{escape(shorten(entry.prompt, 120))}</div>'
            + muted.format(escape(f"{endpoint} · {status} · {entry.request_id[:8]}"))
            + muted.format(escape(key_parameters(entry)))
        )

    def _status(self, entry: HistoryEntry) -> str:
        live = {job.request_id: job for job in self.session.jobs if job.request_id}
        return run_status(entry, live)

    def _update_header(self) -> None:
        self.header.value = f"<b>{escape(self.status_line())}</b>"
        self.compare_button.disabled = len(self.selected) < 2
        self.compare_button.description = f"compare ticked ({len(self.selected)})"

    # -- tile actions (kernel thread) ------------------------------------------------------

    def toggle_play(self, slot: int) -> None:
        """Play the tile's video in place of its poster (again: back to the poster)."""
        tile = self.tiles[slot]
        entry = tile.entry
        if entry is None or not entry.video_url:
            return
        if tile.playing:
            tile.playing = False
            tile.play_button.description = "play"
            tile.picture.value = poster_html(self.posters.get(entry.video_url), "no poster")
            return
        try:
            player = video_html(entry.video_url, width=240, autoplay=True, muted=True, loop=True)
        except ValueError:
            tile.picture.value = poster_html(None, "not a playable source")
            return
        tile.playing = True
        tile.play_button.description = "poster"
        tile.picture.value = player

    def copy_as_magic(self, slot: int) -> str | None:
        """The ``%%ltx`` cell that submits the tile's run again, put into the next cell."""
        entry = self.tiles[slot].entry
        if entry is None:
            return None
        text = magic_cell(entry.endpoint, entry.input)
        self.last_copied = text
        offer_cell(text, self.copied_cell, self.shell)
        return text

    def load(self, slot: int) -> None:
        """Hand the tile's endpoint and input to ``on_load`` (the panel's hook)."""
        entry = self.tiles[slot].entry
        if entry is not None and self.on_load is not None:
            self.on_load(entry.endpoint, dict(entry.input))

    def _ticked(self, slot: int, on: bool) -> None:
        if self._setting_ticks:
            return
        entry = self.tiles[slot].entry
        if entry is None:
            return
        if on:
            self.selected[entry.request_id] = entry
        else:
            self.selected.pop(entry.request_id, None)
        self._update_header()

    def tick(self, request_id: str, on: bool = True) -> None:
        """Tick (or untick) a run for comparison, as its checkbox does."""
        for tile in self.tiles:
            if tile.entry is not None and tile.entry.request_id == request_id:
                tile.tick.value = on
                return
        entry = next((e for e in self.entries if e.request_id == request_id), None)
        if entry is None:
            raise KeyError(f"no run {request_id!r} in this gallery")
        if on:
            self.selected[request_id] = entry
        else:
            self.selected.pop(request_id, None)
        self._update_header()

    def compare(self) -> CompareView | None:
        """The ticked runs side by side (shown under the gallery)."""
        from ._compare import CompareView, Comparison, find_run

        if len(self.selected) < 2:
            return None
        runs = [find_run(self.session, request_id) for request_id in self.selected]
        for child in self.compare_box.children:
            child.close()
        view = CompareView(Comparison(runs))
        self.compare_box.children = (view,)
        return view

    # -- text and HTML forms ---------------------------------------------------------------

    def __repr__(self) -> str:
        lines = [self.status_line()]
        for entry in self.page_entries():
            lines.append(
                f"{entry.request_id[:8]}  {self._status(entry):9}  "
                f"{short_endpoint(entry.endpoint)}  {shorten(entry.prompt, 50)}"
            )
        return "\n".join(lines)

    def page_html(self) -> str:
        """The page as plain HTML: each run's poster (cached ones only), prompt and details."""
        tiles = []
        for entry in self.page_entries():
            poster = self.posters.get(entry.video_url) if entry.video_url else None
            tiles.append(
                f'<div style="width: {_TILE_WIDTH}; display: inline-block; '
                f'vertical-align: top; margin: 4px">{poster_html(poster)}'
                f"{self._info_html(entry)}</div>"
            )
        return f"<div><b>{escape(self.status_line())}</b></div><div>{''.join(tiles)}</div>"

    def close(self) -> None:
        for child in self.compare_box.children:
            child.close()
        close_tree(self)


class _GalleryPage:
    """A gallery page as a plain output (headless)."""

    def __init__(self, gallery: Gallery) -> None:
        self.gallery = gallery

    def _repr_html_(self) -> str:
        return self.gallery.page_html()

    def __repr__(self) -> str:
        return repr(self.gallery)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="%ltx gallery", add_help=False, exit_on_error=False)
    parser.add_argument("text", nargs="*")
    parser.add_argument("--endpoint")
    parser.add_argument("--status")
    parser.add_argument("--page-size", type=int, default=DEFAULT_PAGE_SIZE)
    return parser


def parse_gallery_words(words: list[str]) -> tuple[GalleryFilter, int]:
    """``[TEXT] [--endpoint ID] [--status S] [--page-size N]`` as a filter and a page size."""
    usage = "%ltx gallery [TEXT] [--endpoint ID] [--status S] [--page-size N]"
    try:
        args, unknown = _parser().parse_known_args(words)
    except (argparse.ArgumentError, SystemExit) as error:
        raise UsageError(f"{usage}: {error}") from None
    if unknown:
        raise UsageError(f"{usage}: unexpected {' '.join(unknown)}")
    endpoint = ""
    if args.endpoint:
        endpoint, _ = split_endpoint_id(resolve_endpoint(args.endpoint))
    status = (args.status or "").lower()
    if status and status not in STATUSES:
        raise UsageError(f"%ltx gallery: --status {args.status!r}: one of {', '.join(STATUSES)}")
    if args.page_size < 1:
        raise UsageError(f"%ltx gallery: --page-size must be 1 or more, got {args.page_size}")
    return GalleryFilter(" ".join(args.text), endpoint, status), args.page_size


def open_gallery(
    session: JobSession,
    where: GalleryFilter,
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
    on_load: Callable[[str, dict[str, Any]], Any] | None = None,
    shell: Any = None,
    make_posters: bool = True,
) -> Gallery:
    """A gallery of the session's history: the journal read once, filtered, first page drawn."""
    live = {job.request_id: job for job in session.jobs if job.request_id}
    entries = filter_runs(session.history.entries(), where, live)
    return Gallery(
        entries,
        session=session,
        title=where.describe(),
        page_size=page_size,
        on_load=on_load,
        shell=shell,
        make_posters=make_posters,
    )


def gallery(
    magics: Any,
    words: list[str],
    *,
    on_load: Callable[[str, dict[str, Any]], Any] | None = None,
) -> Gallery | None:
    """``%ltx gallery`` for the magics: the gallery widget (interactive), or its first page as
    plain HTML (headless). ``on_load`` is each tile's "load" (the open panel's)."""
    where, page_size = parse_gallery_words(words)
    has_kernel = getattr(magics.shell, "kernel", None) is not None
    headless = not has_kernel or magics._headless()
    view = open_gallery(
        magics.session,
        where,
        page_size=page_size,
        on_load=on_load,
        shell=magics.shell,
        make_posters=not headless,
    )
    if headless:
        display(_GalleryPage(view))
        view.close()
        return None
    magics.grids.append(view)
    return view
