"""Prices and estimates: the shipped table, fal's pricing API over real loopback HTTP against
the local server, the day cache, and the server's pricing routes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from ltx_jupyter._pricing import (
    API_SOURCE,
    SIZE_PRESETS,
    UnitPrice,
    aget_prices,
    api_source,
    cache_path,
    estimate,
    get_prices,
    load_table,
)
from ltx_jupyter.server import LocalServer, create_app

ServerFactory = Callable[..., LocalServer]

LTX2 = "fal-ai/ltx-2/text-to-video"
LTX2_FAST = "fal-ai/ltx-2/text-to-video/fast"
DISTILLED = "fal-ai/ltx-video-13b-distilled"
V098 = "fal-ai/ltxv-13b-098-distilled/image-to-video"
B19 = "fal-ai/ltx-2-19b/distilled/text-to-video"
SEED = "fal-ai/ltx-video"
DAY = 24 * 3600.0
T0 = 1_800_000_000.0
CANARY = "canary-key-7f3a9c1e5b"


def table_estimate(endpoint_id: str, **arguments: Any) -> Any:
    table = load_table()
    price = table.price(endpoint_id)
    return estimate(endpoint_id, arguments, price, reason=table.unknown_reason(endpoint_id))


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """A price cache directory of its own (the servers' data directories sit in tmp_path)."""
    return tmp_path / "cache"


def platform(server: LocalServer) -> str:
    return f"{server.url}/v1"


def local_api(server: LocalServer) -> str:
    """How prices from ``server``'s pricing API are labelled: by its address, not as fal's."""
    return f"pricing API at {server.url.split('//')[1]}"


def test_prices_from_fals_api_are_labelled_fals_and_any_other_by_its_address() -> None:
    assert api_source("https://api.fal.ai/v1") == API_SOURCE == "fal pricing API"
    assert api_source("http://127.0.0.1:8765/v1") == "pricing API at 127.0.0.1:8765"


# -- the shipped table -------------------------------------------------------------------------

PRICED = {
    # 13B 0.9.7: per video
    **dict.fromkeys(
        [
            "fal-ai/ltx-video-13b-distilled",
            "fal-ai/ltx-video-13b-distilled/image-to-video",
            "fal-ai/ltx-video-13b-distilled/extend",
            "fal-ai/ltx-video-13b-distilled/multiconditioning",
        ],
        (0.04, "video"),
    ),
    **dict.fromkeys(
        [
            "fal-ai/ltx-video-13b-dev",
            "fal-ai/ltx-video-13b-dev/image-to-video",
            "fal-ai/ltx-video-13b-dev/extend",
            "fal-ai/ltx-video-13b-dev/multiconditioning",
        ],
        (0.20, "video"),
    ),
    **dict.fromkeys(
        [
            "fal-ai/ltxv-13b-098-distilled",
            "fal-ai/ltxv-13b-098-distilled/image-to-video",
            "fal-ai/ltxv-13b-098-distilled/extend",
            "fal-ai/ltxv-13b-098-distilled/multiconditioning",
        ],
        (0.02, "second"),
    ),
    **dict.fromkeys(
        ["fal-ai/ltx-2/text-to-video", "fal-ai/ltx-2/image-to-video", "fal-ai/ltx-2/retake-video"],
        (0.06, "second"),
    ),
    **dict.fromkeys(
        ["fal-ai/ltx-2/text-to-video/fast", "fal-ai/ltx-2/image-to-video/fast"], (0.04, "second")
    ),
    "fal-ai/ltx-2.3/image-to-video": (0.06, "second"),
    **{
        f"fal-ai/ltx-2-19b/{distilled}{shape}{lora}": (0.0018, "megapixel")
        for distilled in ("", "distilled/")
        for shape in (
            "text-to-video",
            "image-to-video",
            "video-to-video",
            "audio-to-video",
            "extend-video",
        )
        for lora in ("", "/lora")
    },
    "fal-ai/ltx-2.3-22b/distilled/text-to-video/lora": (0.001405, "megapixel"),
}
UNPRICED = [
    "fal-ai/ltx-video",
    "fal-ai/ltx-video/image-to-video",
    "fal-ai/ltx-2.3/text-to-video",
    "fal-ai/ltx-2.3/text-to-video/fast",
    "fal-ai/ltx-2.3/image-to-video/fast",
    "fal-ai/ltx-2.3/audio-to-video",
    "fal-ai/ltx-2.3/extend-video",
    "fal-ai/ltx-2.3/retake-video",
    "fal-ai/ltx-2.3/reframe",
    "fal-ai/ltx-2.3-22b/text-to-video",
    "fal-ai/ltx-2.3-22b/distilled/image-to-video",
]


def test_shipped_table_prices_every_family_endpoint_with_its_source() -> None:
    table = load_table()
    for endpoint_id, (unit_price, unit) in PRICED.items():
        price = table.price(endpoint_id)
        assert price is not None, endpoint_id
        assert (price.unit_price, price.unit, price.currency) == (unit_price, unit, "USD")
        assert price.source.startswith("shipped table (fal's ")
        assert price.source.endswith(", 2026)")


def test_endpoints_without_a_stated_price_have_none_and_say_so() -> None:
    table = load_table()
    for endpoint_id in UNPRICED:
        assert table.price(endpoint_id) is None, endpoint_id
        assert table.unknown_reason(endpoint_id).startswith(
            f"no published price for {endpoint_id} ("
        )
    assert table.price("fal-ai/flux/dev") is None
    assert table.unknown_reason("fal-ai/flux/dev") == "no published price for fal-ai/flux/dev"


def test_size_presets_are_fals_image_sizes() -> None:
    assert SIZE_PRESETS["landscape_16_9"] == (1024, 576)
    assert SIZE_PRESETS["portrait_4_3"] == (768, 1024)
    assert len(SIZE_PRESETS) == 6


# -- estimates ---------------------------------------------------------------------------------


def test_13b_distilled_costs_per_video_whatever_its_length() -> None:
    short = table_estimate(DISTILLED, num_frames=9, frame_rate=30)
    long = table_estimate("fal-ai/ltx-video-13b-distilled/extend", num_frames=161, frame_rate=30)
    assert short.amount == long.amount == 0.04
    assert short.describe() == (
        "$0.04 (1 video × $0.04/video, "
        "shipped table (fal's LTX-Video 13B 0.9.7 distilled model page, 2026))"
    )
    assert table_estimate("fal-ai/ltx-video-13b-dev").amount == 0.20


def test_098_bills_frames_at_24_fps_and_the_detail_pass_doubles_it() -> None:
    plain = table_estimate(V098, num_frames=121, frame_rate=30, enable_detail_pass=False)
    assert plain.quantity == pytest.approx(121 / 24)  # not 121 / 30: billed at 24 fps
    assert plain.amount == pytest.approx(121 / 24 * 0.02)
    detailed = table_estimate(V098, num_frames=121, frame_rate=30, enable_detail_pass=True)
    assert detailed.amount == pytest.approx(2 * plain.amount)
    assert detailed.describe().startswith("$0.20 (5.04 s × $0.02/s × 2 (enable_detail_pass), ")
    longer = table_estimate(V098, num_frames=241, frame_rate=24, enable_detail_pass=False)
    assert longer.amount == pytest.approx(241 / 24 * 0.02)


@pytest.mark.parametrize(
    ("endpoint_id", "resolution", "duration", "expected"),
    [
        (LTX2, "1080p", 6, 0.36),
        (LTX2, "1440p", 8, 0.96),
        (LTX2, "2160p", 10, 2.40),
        ("fal-ai/ltx-2/image-to-video", "1440p", 6, 0.72),
        (LTX2_FAST, "1080p", 20, 0.80),
        (LTX2_FAST, "1440p", 10, 0.80),
        ("fal-ai/ltx-2/image-to-video/fast", "2160p", 6, 0.96),
        ("fal-ai/ltx-2.3/image-to-video", "2160p", 8, 1.92),
    ],
)
def test_ltx2_costs_per_second_at_its_resolution_tier(
    endpoint_id: str, resolution: str, duration: int, expected: float
) -> None:
    result = table_estimate(endpoint_id, resolution=resolution, duration=duration, fps=25)
    assert result.amount == pytest.approx(expected)
    assert result.quantity == duration


def test_ltx2_without_a_known_resolution_is_unknown() -> None:
    missing = table_estimate(LTX2, duration=8)
    assert missing.amount is None
    assert missing.describe() == (
        "price unknown: the price depends on resolution (1080p, 1440p, 2160p), "
        "which the input does not set"
    )
    odd = table_estimate(LTX2, duration=8, resolution="720p")
    assert odd.amount is None
    assert "resolution=720p" in odd.describe()
    # retake-video has no resolution field: its tier is the input video's, unknown beforehand
    assert table_estimate("fal-ai/ltx-2/retake-video", duration=5).amount is None


def test_19b_costs_per_megapixel_of_preset_or_custom_size() -> None:
    preset = table_estimate(B19, video_size="landscape_16_9", num_frames=121, fps=25)
    assert preset.quantity == pytest.approx(1024 * 576 * 121 / 1e6)
    assert preset.amount == pytest.approx(1024 * 576 * 121 / 1e6 * 0.0018)
    assert preset.describe().startswith("$0.13 (71.37 MP × $0.0018/MP, ")
    custom = table_estimate(
        "fal-ai/ltx-2-19b/image-to-video/lora",
        video_size={"width": 1280, "height": 720},
        num_frames=97,
    )
    assert custom.amount == pytest.approx(1280 * 720 * 97 / 1e6 * 0.0018)
    lora_22b = table_estimate(
        "fal-ai/ltx-2.3-22b/distilled/text-to-video/lora", video_size="square", num_frames=9
    )
    assert lora_22b.amount == pytest.approx(512 * 512 * 9 / 1e6 * 0.001405)
    assert lora_22b.describe().startswith("$0.0033 (")  # below a cent: never "$0.00"


def test_megapixel_price_needs_a_known_size_and_frame_count() -> None:
    auto = table_estimate("fal-ai/ltx-2-19b/image-to-video", video_size="auto", num_frames=121)
    assert auto.amount is None
    assert "auto" in auto.describe() and "unknown before upload" in auto.describe()
    assert auto.unit == "megapixel" and auto.unit_price == 0.0018  # the price itself is known
    no_frames = table_estimate(B19, video_size="square_hd")
    assert (
        no_frames.describe()
        == "price unknown: the input gives no num_frames, nor duration with fps"
    )
    no_size = table_estimate(B19, num_frames=121)
    assert no_size.amount is None and "video_size" in no_size.describe()
    from_fields = table_estimate(B19, width=640, height=480, num_frames=10)
    assert from_fields.amount == pytest.approx(640 * 480 * 10 / 1e6 * 0.0018)


def test_unpublished_price_is_unknown_never_guessed() -> None:
    result = table_estimate(SEED, prompt="a fox", num_inference_steps=30)
    assert result.amount is None and not result.known
    assert result.describe() == (
        "price unknown: no published price for fal-ai/ltx-video "
        "(fal's LTX-Video 0.9.1 model page states no price)"
    )
    assert estimate("fal-ai/other", {}, None).describe() == (
        "price unknown: no published price for fal-ai/other"
    )


def test_a_unit_that_cannot_be_computed_or_a_missing_quantity_is_unknown() -> None:
    per_minute = UnitPrice("fal-ai/x/y", 0.5, "minute", "USD", API_SOURCE, "2026-01-01")
    result = estimate("fal-ai/x/y", {"duration": 60}, per_minute)
    assert result.amount is None
    assert "billed per 'minute', which cannot be computed" in result.describe()
    per_second = UnitPrice("fal-ai/x/y", 0.1, "second", "USD", API_SOURCE, "2026-01-01")
    assert estimate("fal-ai/x/y", {"num_frames": 50}, per_second).describe() == (
        "price unknown: the input gives no duration, nor num_frames with fps or frame_rate"
    )
    from_frames = estimate("fal-ai/x/y", {"num_frames": 50, "frame_rate": 25}, per_second)
    assert from_frames.amount == pytest.approx(0.2)
    assert (
        "not a positive number" in estimate("fal-ai/x/y", {"duration": "8"}, per_second).describe()
    )


# -- fal's pricing API, served by the local server ---------------------------------------------


def test_prices_come_from_the_pricing_api_with_the_users_key(
    server_factory: ServerFactory, cache: Path
) -> None:
    server = server_factory(key=CANARY)
    prices = get_prices(
        [LTX2, B19, SEED], key=CANARY, platform_url=platform(server), cache_dir=cache
    )
    assert prices.note is None
    assert prices.get(LTX2) is not None and prices.get(LTX2).source == local_api(server)
    assert prices.get(B19).unit == "megapixel"
    assert prices.get(SEED) is None
    assert (
        prices.estimate(SEED, {})
        .describe()
        .startswith("price unknown: no published price for fal-ai/ltx-video")
    )
    result = prices.estimate(LTX2, {"duration": 8, "resolution": "1080p"})
    assert result.describe() == f"$0.48 (8 s × $0.06/s, {local_api(server)})"
    # the resolution rule of fal's page still applies to the API's base price
    assert prices.estimate(LTX2, {"duration": 8, "resolution": "2160p"}).amount == pytest.approx(
        1.92
    )


def price_table(unit_price: float) -> dict[str, Any]:
    """A price table in which the account pays ``unit_price`` per second of LTX-2 text-to-video."""
    entry = {
        "endpoint_ids": [LTX2],
        "unit_price": unit_price,
        "unit": "second",
        "currency": "USD",
        "source": "a test account",
        "as_of": "2026",
    }
    return {"entries": [entry]}


def test_the_accounts_own_price_wins_over_the_shipped_table(
    server_factory: ServerFactory, cache: Path
) -> None:
    server = server_factory(prices=price_table(0.05))
    prices = get_prices([LTX2, DISTILLED], platform_url=platform(server), cache_dir=cache)
    assert prices.get(LTX2).unit_price == 0.05
    assert prices.get(LTX2).source == local_api(server)
    assert prices.estimate(LTX2, {"duration": 10, "resolution": "1440p"}).amount == pytest.approx(
        1.0
    )
    # the API does not price it: the shipped table's price, labelled as such
    assert prices.get(DISTILLED).source.startswith("shipped table (")


def test_answers_are_followed_across_pages_and_ids_are_sent_50_at_a_time(
    server_factory: ServerFactory, cache: Path
) -> None:
    server = server_factory(pricing_page_size=2)
    ids = [f"fal-ai/ltx-2-19b/variant-{i}" for i in range(60)] + [LTX2, SEED]
    prices = get_prices(ids, platform_url=platform(server), cache_dir=cache)
    assert prices.note is None
    assert all(prices.get(i).source == local_api(server) for i in ids if i != SEED)
    assert prices.get(SEED) is None


def test_async_variant_gives_the_same_prices(server_factory: ServerFactory, cache: Path) -> None:
    server = server_factory(key=CANARY, pricing_page_size=1)
    prices = asyncio.run(
        aget_prices(
            [LTX2, LTX2_FAST, SEED], key=CANARY, platform_url=platform(server), cache_dir=cache
        )
    )
    assert prices.note is None
    assert prices.get(LTX2_FAST).unit_price == 0.04
    assert prices.get(LTX2_FAST).source == local_api(server)
    assert prices.get(SEED) is None


def test_platform_url_defaults_to_ltx_platform_url(
    server_factory: ServerFactory, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = server_factory()
    monkeypatch.setenv("LTX_PLATFORM_URL", platform(server) + "/")
    prices = get_prices([LTX2], key="k", cache_dir=cache)
    assert prices.note is None and prices.get(LTX2).source == local_api(server)


def test_a_refused_key_falls_back_to_the_table_with_a_note(
    server_factory: ServerFactory, cache: Path
) -> None:
    server = server_factory(key=CANARY)
    prices = get_prices([LTX2, SEED], key="wrong", platform_url=platform(server), cache_dir=cache)
    assert prices.get(LTX2).source.startswith("shipped table (")
    assert prices.note == (
        f"the pricing API at {platform(server)} refused the key (HTTP 401); "
        "using the shipped price table"
    )
    assert prices.get(SEED) is None


def test_without_a_key_fals_api_is_not_asked(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FAL_KEY", "FAL_KEY_ID", "FAL_KEY_SECRET"):
        monkeypatch.delenv(name, raising=False)
    prices = get_prices([LTX2], platform_url="https://api.fal.ai/v1", cache_dir=cache)
    assert (
        prices.note == "no FAL_KEY is set to ask fal's pricing API; using the shipped price table"
    )
    assert prices.get(LTX2).unit_price == 0.06
    assert not cache.exists()


# -- the day cache -----------------------------------------------------------------------------


def test_fresh_cached_prices_need_no_request(server_factory: ServerFactory, cache: Path) -> None:
    server = server_factory()
    url = platform(server)
    first = get_prices([LTX2, SEED], key="k", platform_url=url, cache_dir=cache, now=T0)
    server.stop()
    later = get_prices([LTX2, SEED], key="k", platform_url=url, cache_dir=cache, now=T0 + 3600)
    assert later.note is None  # the stopped server was not needed
    assert later.get(LTX2) == first.get(LTX2)
    assert later.get(LTX2).fetched_at == T0
    assert later.get(SEED) is None  # the API's "no price" is cached too


def test_stale_cached_prices_are_fetched_again(server_factory: ServerFactory, cache: Path) -> None:
    server = server_factory()
    url = platform(server)
    get_prices([LTX2], key="k", platform_url=url, cache_dir=cache, now=T0)
    again = get_prices([LTX2], key="k", platform_url=url, cache_dir=cache, now=T0 + 2 * DAY)
    assert again.note is None
    assert again.get(LTX2).fetched_at == T0 + 2 * DAY
    assert again.get(LTX2).as_of == "2027-01-17T08:00:00+00:00"


def test_unreachable_api_uses_the_cache_then_the_table(
    server_factory: ServerFactory, cache: Path
) -> None:
    server = server_factory()
    url = platform(server)
    get_prices([LTX2], key="k", platform_url=url, cache_dir=cache, now=T0)
    server.stop()
    prices = get_prices(
        [LTX2, DISTILLED, SEED], key="k", platform_url=url, cache_dir=cache, now=T0 + 2 * DAY
    )
    assert prices.get(LTX2).source == local_api(server) and prices.get(LTX2).fetched_at == T0
    assert prices.get(DISTILLED).source.startswith("shipped table (")
    assert prices.get(SEED) is None
    assert prices.note == (
        f"the pricing API at {url} was unreachable (ConnectError); "
        "using prices cached 2 days ago and the shipped price table"
    )


def test_an_unreachable_api_is_not_asked_again_for_a_while_unless_refreshed(
    server_factory: ServerFactory, cache: Path
) -> None:
    down = server_factory()
    url, port = platform(down), down.port
    down.stop()
    offline = get_prices([LTX2], key="k", platform_url=url, cache_dir=cache)
    assert offline.note is not None and offline.note.startswith(f"the pricing API at {url} was")
    server = server_factory(port=port, prices=price_table(0.05))  # back, at the same address
    # A job a moment later does not wait out the same timeout: the failure stands in.
    again = get_prices([LTX2], key="k", platform_url=url, cache_dir=cache)
    assert again.note == offline.note and again.get(LTX2).source.startswith("shipped table (")
    refreshed = get_prices([LTX2], key="k", platform_url=url, cache_dir=cache, refresh=True)
    assert refreshed.note is None
    assert refreshed.get(LTX2).unit_price == 0.05
    assert refreshed.get(LTX2).source == local_api(server)
    # The answer cleared the failure: a lookup that needs the API (no fresh cache) asks it.
    later = get_prices([LTX2], key="k", platform_url=url, cache_dir=cache, max_age=0)
    assert later.note is None and later.get(LTX2).source == local_api(server)


def test_a_refresh_asks_the_api_whatever_the_day_cache_holds(
    server_factory: ServerFactory, cache: Path
) -> None:
    first = server_factory(prices=price_table(0.05))
    url, port = platform(first), first.port

    def unit_price(**options: Any) -> float:
        prices = get_prices([LTX2], key="k", platform_url=url, cache_dir=cache, **options)
        assert prices.note is None
        return prices.get(LTX2).unit_price  # type: ignore[no-any-return]

    assert unit_price() == 0.05
    first.stop()
    server_factory(port=port, prices=price_table(0.07))  # the account's price changed
    assert unit_price() == 0.05  # from the day cache, without asking
    assert unit_price(refresh=True) == 0.07
    assert unit_price() == 0.07  # the cache holds the refreshed price


def test_the_async_lookup_refreshes_too(server_factory: ServerFactory, cache: Path) -> None:
    first = server_factory(prices=price_table(0.05))
    url, port = platform(first), first.port

    def unit_price(**options: Any) -> float:
        prices = asyncio.run(
            aget_prices([LTX2], key="k", platform_url=url, cache_dir=cache, **options)
        )
        assert prices.note is None
        return prices.get(LTX2).unit_price  # type: ignore[no-any-return]

    assert unit_price() == 0.05
    first.stop()
    server_factory(port=port, prices=price_table(0.07))
    assert unit_price() == 0.05
    assert unit_price(refresh=True) == 0.07


def test_another_keys_cached_prices_are_not_used(
    server_factory: ServerFactory, cache: Path
) -> None:
    server = server_factory()
    url = platform(server)
    get_prices([LTX2], key="alice", platform_url=url, cache_dir=cache, now=T0)
    server.stop()
    bob = get_prices([LTX2], key="bob", platform_url=url, cache_dir=cache, now=T0)
    assert bob.get(LTX2).source.startswith("shipped table (")
    assert cache_path("alice", url, cache) != cache_path("bob", url, cache)


def test_a_corrupt_cache_file_is_ignored_and_replaced(
    server_factory: ServerFactory, cache: Path
) -> None:
    server = server_factory()
    url = platform(server)
    path = cache_path("k", url, cache)
    cache.mkdir()
    path.write_text('{"format": 1, "prices": [tru')
    prices = get_prices([LTX2], key="k", platform_url=url, cache_dir=cache)
    assert prices.note is None and prices.get(LTX2).source == local_api(server)
    assert LTX2 in json.loads(path.read_text())["prices"]
    server.stop()
    path.write_bytes(b"\xff\xfe not json")
    offline = get_prices([LTX2], key="k", platform_url=url, cache_dir=cache)
    assert offline.get(LTX2).source.startswith("shipped table (")


def test_the_key_is_never_written_or_shown(server_factory: ServerFactory, cache: Path) -> None:
    server = server_factory(key=CANARY)
    url = platform(server)
    prices = get_prices([LTX2, SEED], key=CANARY, platform_url=url, cache_dir=cache)
    assert prices.get(LTX2).source == local_api(server)
    files = [p for p in cache.rglob("*") if p.is_file()]
    assert files, "the prices were cached"
    for path in files:
        assert CANARY not in path.name
        assert CANARY.encode() not in path.read_bytes()
    server.stop()
    failed = get_prices([LTX2], key=CANARY, platform_url=url, cache_dir=cache / "other")
    shown = [repr(prices), repr(failed), failed.note, prices.estimate(LTX2, {}).describe()]
    assert failed.note is not None
    assert not any(CANARY in text for text in shown)


# -- the server's pricing routes ---------------------------------------------------------------


def test_server_pricing_route_validates_its_query(server_factory: ServerFactory) -> None:
    server = server_factory()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        none = client.get("/v1/models/pricing")
        assert none.status_code == 422
        assert none.json()["detail"][0]["loc"] == ["query", "endpoint_id"]
        many = client.get(
            "/v1/models/pricing", params={"endpoint_id": ",".join(f"a/b{i}" for i in range(51))}
        )
        assert many.status_code == 422
        assert "at most 50 endpoint ids" in many.json()["detail"][0]["msg"]
        repeated = client.get(
            "/v1/models/pricing", params=[("endpoint_id", LTX2), ("endpoint_id", SEED + "," + B19)]
        )
        assert repeated.status_code == 200
        body = repeated.json()
        assert [p["endpoint_id"] for p in body["prices"]] == [LTX2, B19]
        assert body["prices"][0] == {
            "endpoint_id": LTX2,
            "unit_price": 0.06,
            "unit": "second",
            "currency": "USD",
        }
        assert body["next_cursor"] is None and body["has_more"] is False
        cursor = client.get("/v1/models/pricing", params={"endpoint_id": LTX2, "cursor": "x"})
        assert cursor.status_code == 422
        assert cursor.json()["detail"][0]["loc"] == ["query", "cursor"]
        # not a job submission to an endpoint named "v1/models/pricing"
        assert client.post("/v1/models/pricing", json={"prompt": "x"}).status_code == 405


def test_server_estimate_route(server_factory: ServerFactory) -> None:
    server = server_factory()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        unit = client.post(
            "/v1/models/pricing/estimate",
            json={
                "estimate_type": "unit_price",
                "endpoints": {LTX2: {"unit_quantity": 8}, DISTILLED: {"unit_quantity": 1}},
            },
        )
        assert unit.status_code == 200
        assert unit.json() == {"estimate_type": "unit_price", "total_cost": 0.52, "currency": "USD"}
        calls = client.post(
            "/v1/models/pricing/estimate",
            json={
                "estimate_type": "historical_api_price",
                "endpoints": {DISTILLED: {"call_quantity": 3}},
            },
        )
        assert calls.json()["total_cost"] == pytest.approx(0.12)

        def detail(body: Any, **kwargs: Any) -> list[dict[str, Any]]:
            response = client.post("/v1/models/pricing/estimate", json=body, **kwargs)
            assert response.status_code == 422, response.text
            return response.json()["detail"]

        assert detail({"estimate_type": "guess", "endpoints": {LTX2: {"unit_quantity": 1}}})[0][
            "loc"
        ] == ["body", "estimate_type"]
        unpriced = detail(
            {"estimate_type": "unit_price", "endpoints": {SEED: {"unit_quantity": 1}}}
        )
        assert unpriced[0]["loc"] == ["body", "endpoints", SEED]
        assert "no published price for fal-ai/ltx-video" in unpriced[0]["msg"]
        negative = detail(
            {"estimate_type": "unit_price", "endpoints": {LTX2: {"unit_quantity": -1}}}
        )
        assert negative[0]["loc"] == ["body", "endpoints", LTX2, "unit_quantity"]
        fractional = detail(
            {"estimate_type": "historical_api_price", "endpoints": {LTX2: {"call_quantity": 1.5}}}
        )
        assert fractional[0]["loc"][-1] == "call_quantity"
        assert detail({"estimate_type": "unit_price", "endpoints": {}})[0]["loc"] == [
            "body",
            "endpoints",
        ]
        response = client.post(
            "/v1/models/pricing/estimate",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 422
        assert response.json()["detail"][0]["type"] == "json_invalid"


def test_server_pricing_routes_need_the_servers_key(server_factory: ServerFactory) -> None:
    server = server_factory(key=CANARY)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get("/v1/models/pricing", params={"endpoint_id": LTX2}).status_code == 401
        authorised = client.get(
            "/v1/models/pricing",
            params={"endpoint_id": LTX2},
            headers={"Authorization": f"Key {CANARY}"},
        )
        assert authorised.status_code == 200


def test_server_prices_from_a_file_and_a_bad_table_stops_start_up(
    tmp_path: Path, cache: Path
) -> None:
    from ltx_jupyter.server import ServerConfig

    good = tmp_path / "prices.json"
    good.write_text(
        json.dumps(
            {
                "entries": [
                    {
                        "endpoint_ids": ["acme/*"],
                        "unit_price": 1.5,
                        "unit": "video",
                        "currency": "eur",
                        "source": "acme",
                        "as_of": "2026",
                    }
                ]
            }
        )
    )
    with LocalServer(ServerConfig(port=0, data_dir=tmp_path / "data", prices=good)) as server:
        prices = get_prices(["acme/clip"], platform_url=platform(server), cache_dir=cache)
    assert (
        prices.estimate("acme/clip", {}).describe()
        == f"1.50 EUR (1 video × 1.50 EUR/video, {local_api(server)})"
    )
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"entries": [{"endpoint_ids": ["a/b"], "unit_price": -1}]}))
    with pytest.raises(ValueError, match=r"bad\.json: entries\[0\]\.unit_price"):
        create_app(ServerConfig(port=0, data_dir=tmp_path / "data2", prices=bad))


def test_a_session_answers_any_part_of_a_kept_lookup_without_another(
    server_factory: ServerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ltx_jupyter import _pricing
    from ltx_jupyter._history import HistoryStore
    from ltx_jupyter._jobs import JobSession

    server = server_factory()
    looked_up: list[list[str]] = []
    real = _pricing.get_prices

    def counted(endpoint_ids: Any, **options: Any) -> Any:
        looked_up.append(list(endpoint_ids))
        return real(endpoint_ids, **options)

    monkeypatch.setattr(_pricing, "get_prices", counted)
    session = JobSession(history=HistoryStore(tmp_path / "history.jsonl"))
    try:
        both = session.prices([LTX2, SEED], server.url)
        assert session.prices([SEED], server.url) is both  # what the panel's lookup covers
        assert looked_up == [[LTX2, SEED]]
        session.prices(["fal-ai/ltx-2/image-to-video"], server.url)  # one it does not
        assert looked_up[1:] == [["fal-ai/ltx-2/image-to-video"]]
    finally:
        session.close()
