"""``%ltx gallery``: a 5,000-run history filtered by text, endpoint and status, newest first,
paged; posters from the disk cache or made in the background for the tiles on screen only; the
tiles' play, copy as ``%%ltx``, tick-for-compare and load hook."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from ltx_jupyter._compare import CompareView
from ltx_jupyter._gallery import Gallery, GalleryFilter, PosterCache, open_gallery
from ltx_jupyter._parsing import magic_cell

from .shells import eventually, magics_of

RUNS = 5000
ENDPOINTS = ("fal-ai/ltx-video", "fal-ai/ltx-2/text-to-video", "fal-ai/ltxv-13b-098-distilled")
DEAD_URL = "http://127.0.0.1:9/files/gone/video.mp4"  # nothing listens on port 9


def _status(i: int) -> str:
    return "failed" if i % 50 == 7 else "cancelled" if i % 50 == 9 else "completed"


def write_history(path: Path, videos: dict[int, str]) -> None:
    """A journal of ``RUNS`` runs in the lines the history writes (submit, then update); run
    ``i`` is older than run ``i + 1``. ``videos`` gives some runs a real video URL."""
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    lines = []
    for i in range(RUNS):
        request_id = f"{i:05d}-run"
        prompt = f"a heron at dawn, take {i}" if i % 10 == 0 else f"a red fox, take {i}"
        submitted = (start + timedelta(minutes=i)).isoformat(timespec="milliseconds")
        lines.append(
            {
                "event": "submit",
                "request_id": request_id,
                "endpoint": ENDPOINTS[i % 3],
                "input": {"prompt": prompt, "seed": i},
                "queue_url": "http://127.0.0.1:9",
                "status": "queued",
                "submitted_at": submitted,
                "cost": 0.04,
                "currency": "USD",
            }
        )
        status = _status(i)
        update: dict[str, Any] = {"event": "update", "request_id": request_id, "status": status}
        if status == "completed":
            update.update(video_url=videos.get(i, DEAD_URL), seed=i)
        lines.append(update)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


@pytest.fixture
def shell(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    ltx_shell: Callable[..., Any],
    local_server: Any,
) -> Iterator[InteractiveShell]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LTX_HISTORY_FILE", str(tmp_path / "history.jsonl"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("FAL_KEY", raising=False)
    yield ltx_shell(local_server.url)


@pytest.fixture
def videos(shell: InteractiveShell) -> list[str]:
    """Three real videos on the local server (from one short sweep)."""
    shell.run_cell_magic("ltx", "--sweep seed=1,2,3 --steps 2 -o s", "x")
    sweep = shell.user_ns["s"]
    sweep.wait(60)
    return [job.result.url for job in sweep.jobs.values()]


def file_gets(server: Any) -> int:
    return int(httpx.get(f"{server.url}/_local/stats").json()["by_kind"]["file"])


def gallery_of(shell: InteractiveShell, **options: Any) -> Gallery:
    where = GalleryFilter(**options.pop("where", {}))
    return open_gallery(magics_of(shell).session, where, shell=shell, **options)


def test_a_5000_run_history_opens_newest_first_and_pages(shell, tmp_path):
    write_history(tmp_path / "history.jsonl", {})
    gallery = gallery_of(shell, make_posters=False)
    assert len(gallery.entries) == RUNS and gallery.pages == 417
    assert [e.request_id for e in gallery.page_entries()] == [
        f"{i:05d}-run" for i in range(RUNS - 1, RUNS - 13, -1)
    ]
    assert "ltx gallery · 5000 runs · page 1 of 417" in gallery.header.value
    assert gallery.prev_button.disabled and not gallery.next_button.disabled
    gallery.next_button.click()
    assert gallery.page == 1 and gallery.tiles[0].entry.request_id == "04987-run"
    gallery.show_page(416)  # the last page holds the 8 oldest runs
    shown = [t for t in gallery.tiles if t.box.layout.display != "none"]
    assert [t.entry.request_id for t in shown] == [f"{i:05d}-run" for i in range(7, -1, -1)]
    assert gallery.next_button.disabled
    tile = shown[0]
    assert "a red fox, take 7" in tile.info.value and "failed" in tile.info.value
    assert "est. $0.04" in tile.info.value and "ltx-2/text-to-video" in tile.info.value
    assert "no video" in tile.picture.value and tile.play_button.disabled
    gallery.close()


def test_filters_by_text_endpoint_and_status(shell, tmp_path):
    write_history(tmp_path / "history.jsonl", {})
    herons = gallery_of(shell, where={"text": "HERON"}, make_posters=False)
    assert len(herons.entries) == 500
    assert all("heron" in e.prompt for e in herons.entries)
    ltx2 = gallery_of(shell, where={"endpoint": "fal-ai/ltx-2"}, make_posters=False)
    assert len(ltx2.entries) == 1667
    assert {e.endpoint for e in ltx2.entries} == {"fal-ai/ltx-2/text-to-video"}
    failed = gallery_of(shell, where={"status": "failed"}, make_posters=False)
    assert len(failed.entries) == 100 and all(e.status == "failed" for e in failed.entries)
    with capture_output() as captured:  # the magic, without a kernel: the plain first page
        shell.run_line_magic("ltx", "gallery heron --endpoint ltx-video --status completed")
    text = captured.outputs[-1].data["text/plain"]
    header = text.splitlines()[0]
    # Runs 0, 30, 60... are herons on ltx-video (i % 10 == 0 and i % 3 == 0); none failed.
    assert header == (
        "ltx gallery · 167 runs matching 'heron' on fal-ai/ltx-video completed · page 1 of 14"
    )
    assert text.splitlines()[1].startswith("04980-ru  completed  ltx-video  a heron")
    html = captured.outputs[-1].data["text/html"]
    assert html.count('class="ltx-poster-placeholder"') == 12
    with pytest.raises(UsageError, match="--status 'done': one of queued, running, completed"):
        shell.run_line_magic("ltx", "gallery --status done")
    with pytest.raises(UsageError, match="unexpected --bogus"):
        shell.run_line_magic("ltx", "gallery --bogus 1")


def test_opening_reads_nothing_over_the_network_and_posters_come_for_the_page_only(
    shell, tmp_path, local_server, videos
):
    # The three real videos are the newest runs; all older ones point at a dead port.
    write_history(tmp_path / "history.jsonl", {RUNS - 1 - i: url for i, url in enumerate(videos)})
    before = file_gets(local_server)
    closed = gallery_of(shell, make_posters=False)
    assert file_gets(local_server) == before
    closed.close()
    gallery = gallery_of(shell)  # posters made in the background, for the first page
    tiles = gallery.tiles
    eventually(lambda: all("<img" in t.picture.value for t in tiles[:3]), timeout=30)
    eventually(lambda: all("no poster" in t.picture.value for t in tiles[3:]), timeout=30)
    assert all('src="data:image/jpeg;base64,' in t.picture.value for t in tiles[:3])
    assert file_gets(local_server) - before == 3  # one read per video on screen, no more
    cache = PosterCache(tmp_path / "cache" / "ltx-jupyter" / "posters")
    assert all(
        cache.get(
            url,
        )
        is not None
        for url in videos
    )
    # Opened again: posters from the disk cache, nothing read.
    again = gallery_of(shell)
    assert all("<img" in t.picture.value for t in again.tiles[:3])
    time.sleep(0.5)
    assert file_gets(local_server) - before == 3
    gallery.close()
    again.close()


def test_tiles_play_copy_tick_for_compare_and_load(shell, tmp_path, videos):
    write_history(tmp_path / "history.jsonl", {RUNS - 1 - i: url for i, url in enumerate(videos)})
    loaded: list[tuple[str, dict[str, Any]]] = []
    gallery = gallery_of(shell, make_posters=False, on_load=lambda e, i: loaded.append((e, i)))
    first = gallery.tiles[0]
    first.play_button.click()
    assert "<video" in first.picture.value and videos[0] in first.picture.value
    assert first.play_button.description == "poster"
    first.play_button.click()
    assert "<video" not in first.picture.value

    first.copy_button.click()
    entry = first.entry
    assert gallery.last_copied == magic_cell(entry.endpoint, entry.input)
    assert shell.rl_next_input == gallery.last_copied
    assert gallery.last_copied.startswith("%%ltx --endpoint fal-ai/ltx-2/text-to-video")

    assert first.load_button.layout.display is None
    first.load_button.click()
    assert loaded == [(entry.endpoint, entry.input)]

    assert gallery.compare_button.disabled
    first.tick.value = True
    gallery.tiles[1].tick.value = True
    assert "2 ticked" in gallery.header.value and not gallery.compare_button.disabled
    gallery.show_page(3)
    gallery.show_page(0)  # ticks survive paging
    assert gallery.tiles[0].tick.value and gallery.tiles[1].tick.value
    gallery.compare_button.click()
    (view,) = gallery.compare_box.children
    assert isinstance(view, CompareView)
    assert view.grid.col_labels == ["04999-ru", "04998-ru"]
    assert [m["src"] for m in view.grid.media] == videos[:2]
    assert "seed ≠" in view.table.value and "prompt ≠" in view.table.value
    gallery.close()


def test_without_a_load_hook_tiles_have_no_load_button(shell, tmp_path):
    write_history(tmp_path / "history.jsonl", {})
    shell.kernel = object()  # a kernel where a person works: the widget
    try:
        gallery = shell.run_line_magic("ltx", "gallery fox --page-size 5")
    finally:
        del shell.kernel
    assert isinstance(gallery, Gallery) and len(gallery.tiles) == 5
    assert gallery.tiles[0].load_button.layout.display == "none"
    assert gallery in magics_of(shell).grids
    gallery.close()
