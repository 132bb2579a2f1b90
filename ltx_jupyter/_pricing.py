"""What a request costs: unit prices of fal endpoints, and a request's estimate.

Unit prices come from fal's platform pricing API, asked with the user's own key (fal may give
an account its own prices), and are cached for a day in the user cache directory. When the API
cannot be asked (no key, unreachable, refused), cached prices are used even if stale, then the
price table shipped in ``data/prices.json`` (fal's model pages, labelled as such). Asking for
a price never raises at the user: a failure becomes a one-line ``note``.

:func:`estimate` turns a unit price and a request's input (its defaults filled in) into an
amount: per video, per second of output, per megapixel of width × height × frames, times the
factors some options carry (0.9.8's detail pass, LTX-2's resolution). A unit or a quantity that
cannot be computed from the input gives "price unknown", never a guess.

>>> prices = get_prices(["fal-ai/ltx-2/text-to-video"])              # doctest: +SKIP
>>> prices.estimate("fal-ai/ltx-2/text-to-video", {"duration": 8, "resolution": "1080p"})
... # doctest: +SKIP
Estimate($0.48 (8 s × $0.06/s, fal pricing API))

No IPython here; the client's and the server's sides both use this module.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fnmatch import fnmatchcase
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ._failures import RecentFailures
from ._fal import default_platform_url, is_fal_url

if TYPE_CHECKING:
    import httpx

__all__ = [
    "API_SOURCE",
    "CACHE_MAX_AGE",
    "MAX_IDS_PER_CALL",
    "SIZE_PRESETS",
    "Estimate",
    "Multiplier",
    "PriceTable",
    "Prices",
    "TableEntry",
    "UnitPrice",
    "add_up",
    "aget_prices",
    "api_source",
    "cache_path",
    "default_cache_dir",
    "estimate",
    "format_money",
    "format_totals",
    "get_prices",
    "load_table",
]

logger = logging.getLogger(__name__)

#: How the source of a price fetched from fal's pricing API is labelled.
API_SOURCE = "fal pricing API"


def api_source(platform_url: str) -> str:
    """The label of prices fetched from the pricing API at ``platform_url``: fal's, or the
    server's host (a local server's configured prices are not fal's)."""
    if is_fal_url(platform_url):
        return API_SOURCE
    return f"pricing API at {urlsplit(platform_url).netloc or platform_url}"


#: Seconds a price fetched from the API stays fresh in the cache.
CACHE_MAX_AGE = 24 * 3600.0
#: fal's pricing API takes 1-50 endpoint ids per call.
MAX_IDS_PER_CALL = 50
#: The billing units whose quantity can be computed from a request's input.
KNOWN_UNITS = ("video", "second", "megapixel")
#: Pages followed per call at most, so a server repeating ``has_more`` cannot loop forever.
_MAX_PAGES = 100
_CACHE_FORMAT = 1
_ACCEPT = {"Accept": "application/json"}
_TABLE_FORMAT = "ltx-jupyter prices 1"
_ENDPOINT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*(/[A-Za-z0-9_.\-]+)+")
_UNIT_SYMBOLS = {"second": "s", "megapixel": "MP", "video": "video"}
_CURRENCY_SYMBOLS = {"USD": "$"}

#: fal's image-size preset table (the ``ImageSize`` presets of its schemas), as (width, height)
#: in pixels; a ``video_size`` preset name means these sizes. Image-to-video endpoints also
#: accept ``auto``: the input image's size, which is unknown before upload, so such a request's
#: per-megapixel price is unknown.
SIZE_PRESETS: Mapping[str, tuple[int, int]] = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}


# -- the price table ---------------------------------------------------------------------------


def _value_key(value: Any) -> str:
    """How an input value is spelled among a multiplier's factors (JSON object keys)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class Multiplier:
    """An input field whose value scales the unit price: ``factors[value]``.

    ``factors`` is keyed by the value as JSON spells it (``"true"``, ``"1440p"``, ``"8"``).
    ``default`` is the key used when the input lacks the field; without one, a missing field
    makes the price unknown.
    """

    field: str
    factors: Mapping[str, float]
    default: str | None = None


@dataclass(frozen=True)
class TableEntry:
    """One price of the shipped table, for the endpoint ids its ``patterns`` match.

    A pattern is an endpoint id or a shell-style pattern (``fal-ai/ltx-2-19b/*``: ``*`` spans
    ``/`` too). ``billed_fps``: per-second prices bill ``num_frames / billed_fps`` seconds.
    """

    patterns: tuple[str, ...]
    unit_price: float
    unit: str
    currency: str
    source: str
    as_of: str
    stated: str = ""
    billed_fps: float | None = None
    multipliers: tuple[Multiplier, ...] = ()

    @property
    def label(self) -> str:
        """How a price from this entry names its source."""
        return f"shipped table ({self.source}, {self.as_of})"


@dataclass(frozen=True)
class PriceTable:
    """Unit prices known without asking fal, and the ids known to have none."""

    entries: tuple[TableEntry, ...]
    #: (patterns, why there is no price) for endpoints whose pages state none.
    unpriced: tuple[tuple[tuple[str, ...], str], ...] = ()

    def _match(self, endpoint_id: str) -> TableEntry | str | None:
        """The entry pricing ``endpoint_id``, the note saying it has no price, or None.

        An exact id wins over a pattern, a longer pattern over a shorter one.
        """
        best: tuple[bool, int] | None = None
        found: TableEntry | str | None = None
        targets: list[tuple[tuple[str, ...], TableEntry | str]] = [
            *((e.patterns, e) for e in self.entries),
            *self.unpriced,
        ]
        for patterns, target in targets:
            for pattern in patterns:
                exact = pattern == endpoint_id
                rank = (exact, len(pattern))
                if (exact or fnmatchcase(endpoint_id, pattern)) and (best is None or rank > best):
                    best, found = rank, target
        return found

    def entry(self, endpoint_id: str) -> TableEntry | None:
        """The entry pricing ``endpoint_id``, if any."""
        found = self._match(endpoint_id)
        return found if isinstance(found, TableEntry) else None

    def price(self, endpoint_id: str) -> UnitPrice | None:
        """``endpoint_id``'s unit price from this table, labelled with its source and date."""
        entry = self.entry(endpoint_id)
        if entry is None:
            return None
        return UnitPrice(
            endpoint_id=endpoint_id,
            unit_price=entry.unit_price,
            unit=entry.unit,
            currency=entry.currency,
            source=entry.label,
            as_of=entry.as_of,
            billed_fps=entry.billed_fps,
            multipliers=entry.multipliers,
        )

    def unknown_reason(self, endpoint_id: str) -> str:
        """Why ``endpoint_id`` has no price in this table (one line)."""
        found = self._match(endpoint_id)
        if isinstance(found, str):
            return f"no published price for {endpoint_id} ({found})"
        return f"no published price for {endpoint_id}"

    @classmethod
    def from_json(cls, document: Any, *, origin: str = "price table") -> PriceTable:
        """Read a table in ``data/prices.json``'s format; ``ValueError`` naming what is wrong."""
        if not isinstance(document, Mapping):
            raise ValueError(f"{origin}: expected a JSON object with 'entries'")
        if document.get("format", _TABLE_FORMAT) != _TABLE_FORMAT:
            raise ValueError(f"{origin}: format must be {_TABLE_FORMAT!r}")
        raw_entries = document.get("entries")
        if not isinstance(raw_entries, list):
            raise ValueError(f"{origin}: 'entries' must be a list")
        entries = tuple(
            _read_entry(item, f"{origin}: entries[{i}]") for i, item in enumerate(raw_entries)
        )
        unpriced = []
        for i, item in enumerate(document.get("unpriced") or []):
            where = f"{origin}: unpriced[{i}]"
            if not isinstance(item, Mapping):
                raise ValueError(f"{where} must be an object")
            note = item.get("note", "the model page states no price")
            if not isinstance(note, str):
                raise ValueError(f"{where}.note must be a string")
            unpriced.append((_read_patterns(item, where), note))
        return cls(entries=entries, unpriced=tuple(unpriced))


def _read_patterns(item: Mapping[str, Any], where: str) -> tuple[str, ...]:
    ids = item.get("endpoint_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise ValueError(f"{where}.endpoint_ids must be a non-empty list of endpoint ids")
    return tuple(ids)


def _positive(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _read_entry(item: Any, where: str) -> TableEntry:
    if not isinstance(item, Mapping):
        raise ValueError(f"{where} must be an object")
    price = item.get("unit_price")
    if not isinstance(price, (int, float)) or isinstance(price, bool) or not price >= 0:
        raise ValueError(f"{where}.unit_price must be a non-negative number, got {price!r}")
    for name in ("unit", "currency", "source", "as_of"):
        if not isinstance(item.get(name), str) or not item[name]:
            raise ValueError(f"{where}.{name} must be a non-empty string")
    billed_fps = item.get("billed_fps")
    if billed_fps is not None and not _positive(billed_fps):
        raise ValueError(f"{where}.billed_fps must be a positive number, got {billed_fps!r}")
    multipliers = []
    for j, rule in enumerate(item.get("multipliers") or []):
        at = f"{where}.multipliers[{j}]"
        factors = rule.get("factors") if isinstance(rule, Mapping) else None
        if not isinstance(rule, Mapping) or not isinstance(rule.get("field"), str):
            raise ValueError(f"{at} must be an object with a 'field' name")
        if not isinstance(factors, Mapping) or not all(_positive(f) for f in factors.values()):
            raise ValueError(f"{at}.factors must map values to positive numbers")
        default = _value_key(rule["default"]) if "default" in rule else None
        if default is not None and default not in factors:
            raise ValueError(f"{at}.default must be one of the factors' values")
        multipliers.append(
            Multiplier(rule["field"], {str(k): float(v) for k, v in factors.items()}, default)
        )
    return TableEntry(
        patterns=_read_patterns(item, where),
        unit_price=float(price),
        unit=_normal_unit(item["unit"]),
        currency=item["currency"].upper(),
        source=item["source"],
        as_of=item["as_of"],
        stated=str(item.get("stated", "")),
        billed_fps=float(billed_fps) if billed_fps is not None else None,
        multipliers=tuple(multipliers),
    )


@lru_cache(maxsize=1)
def _shipped_table() -> PriceTable:
    text = resources.files("ltx_jupyter").joinpath("data", "prices.json").read_text("utf-8")
    return PriceTable.from_json(json.loads(text), origin="ltx_jupyter/data/prices.json")


def load_table(source: Mapping[str, Any] | str | os.PathLike[str] | None = None) -> PriceTable:
    """A price table: the shipped one (``None``), a document, or a JSON file in its format.

    ``ValueError`` (naming the file and the entry) if it is not a valid table.
    """
    if source is None:
        return _shipped_table()
    if isinstance(source, Mapping):
        return PriceTable.from_json(source)
    path = Path(source).expanduser()
    try:
        document = json.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise ValueError(f"price table {path}: cannot be read ({exc.strerror})") from None
    except ValueError as exc:
        raise ValueError(f"price table {path}: not valid JSON ({exc})") from None
    return PriceTable.from_json(document, origin=f"price table {path}")


# -- unit prices and estimates -----------------------------------------------------------------


@dataclass(frozen=True)
class UnitPrice:
    """What one unit of an endpoint's output costs, and where that figure comes from.

    ``source`` is ``"fal pricing API"`` (``"pricing API at <host>"`` for another server's, see
    :func:`api_source`) or ``"shipped table (<page>, <date>)"``; ``as_of`` the
    time it was fetched (ISO 8601, UTC) or the table's date; ``fetched_at`` the fetch's epoch
    seconds (API prices only). ``billed_fps`` and ``multipliers`` are the shipped table's rules
    for the endpoint, kept when the API's unit is the table's.
    """

    endpoint_id: str
    unit_price: float
    unit: str
    currency: str
    source: str
    as_of: str
    fetched_at: float | None = None
    billed_fps: float | None = None
    multipliers: tuple[Multiplier, ...] = ()

    def describe(self) -> str:
        """One line such as ``$0.02 per second (×2 with enable_detail_pass), fal pricing API``."""
        text = f"{format_money(self.unit_price, self.currency, unit=True)} per {self.unit}"
        notes = [
            f"×{_number_text(f)} with {_factor_label(m.field, k)}"
            for m in self.multipliers
            for k, f in m.factors.items()
            if f != 1
        ]
        if self.billed_fps is not None:
            notes.insert(0, f"billed at {_number_text(self.billed_fps)} fps")
        if notes:
            text += f" ({', '.join(notes)})"
        return f"{text}, {self.source}"


@dataclass(frozen=True)
class Estimate:
    """What a request will cost, or why that is unknown.

    ``amount`` is None when the price is unknown, and ``reason`` says why (no published
    price, a unit that cannot be computed, a missing quantity). ``quantity`` is in ``unit``s;
    ``factors`` are the (label, factor) pairs that scaled the unit price; ``basis`` says how
    the quantity was computed from the input.
    """

    endpoint_id: str
    amount: float | None
    currency: str | None = None
    unit: str | None = None
    quantity: float | None = None
    unit_price: float | None = None
    factors: tuple[tuple[str, float], ...] = ()
    source: str | None = None
    reason: str | None = None
    basis: str | None = None

    @property
    def known(self) -> bool:
        """Whether the amount is known."""
        return self.amount is not None

    @property
    def short(self) -> str:
        """The amount alone (``$0.48``), or ``price unknown``."""
        if self.amount is None or self.currency is None:
            return "price unknown"
        return format_money(self.amount, self.currency)

    def describe(self) -> str:
        """One line: ``$0.48 (8 s × $0.06/s, fal pricing API)`` or ``price unknown: <why>``."""
        if self.amount is None or self.currency is None or self.unit is None:
            return f"price unknown: {self.reason or 'no price'}"
        assert self.quantity is not None and self.unit_price is not None
        symbol = _UNIT_SYMBOLS.get(self.unit, self.unit)
        parts = [
            f"{_quantity_text(self.quantity, self.unit)}",
            f"{format_money(self.unit_price, self.currency, unit=True)}/{symbol}",
            *(f"{_number_text(f)} ({label})" for label, f in self.factors),
        ]
        return f"{format_money(self.amount, self.currency)} ({' × '.join(parts)}, {self.source})"

    def __repr__(self) -> str:
        return f"Estimate({self.describe()})"


class _Unknown(Exception):
    """A quantity or factor the input does not determine; the message says why."""


def estimate(
    endpoint_id: str,
    arguments: Mapping[str, Any],
    price: UnitPrice | None,
    *,
    reason: str | None = None,
) -> Estimate:
    """What a request to ``endpoint_id`` with ``arguments`` costs at ``price``.

    ``arguments`` is the input with the endpoint's defaults already filled in. ``price=None``
    gives "price unknown" with ``reason`` (default: no published price). Quantity per unit:
    ``video`` 1; ``second`` the ``duration``, else ``num_frames`` / (``fps`` or
    ``frame_rate``), or ``num_frames / billed_fps`` where the endpoint bills at a fixed rate;
    ``megapixel`` width × height × frames / 10⁶, the size from ``video_size`` (an object or a
    preset of :data:`SIZE_PRESETS`) or ``width``/``height``. Any other unit, or a quantity the
    input does not give, is unknown.
    """
    if price is None:
        return Estimate(endpoint_id, None, reason=reason or f"no published price for {endpoint_id}")
    known = {
        "currency": price.currency,
        "unit": price.unit,
        "unit_price": price.unit_price,
        "source": price.source,
    }
    try:
        quantity, basis = _quantity(price, arguments)
        factors = tuple(_factor(rule, arguments) for rule in price.multipliers)
    except _Unknown as exc:
        return Estimate(endpoint_id, None, reason=str(exc), **known)  # type: ignore[arg-type]
    amount = price.unit_price * quantity
    for _, factor in factors:
        amount *= factor
    return Estimate(
        endpoint_id,
        amount,
        quantity=quantity,
        factors=tuple(f for f in factors if f[1] != 1),
        basis=basis,
        **known,  # type: ignore[arg-type]
    )


def _number(arguments: Mapping[str, Any], name: str) -> float | None:
    """``arguments[name]`` as a positive number; None if absent; :class:`_Unknown` if bad."""
    value = arguments.get(name)
    if value is None:
        return None
    if not _positive(value):
        raise _Unknown(f"{name} is {value!r}, not a positive number")
    return float(value)


def _fps(arguments: Mapping[str, Any]) -> tuple[float, str] | None:
    for name in ("fps", "frame_rate"):
        fps = _number(arguments, name)
        if fps is not None:
            return fps, name
    return None


def _quantity(price: UnitPrice, arguments: Mapping[str, Any]) -> tuple[float, str]:
    """How many units the request buys, and how that was computed."""
    if price.unit == "video":
        return 1.0, "one clip"
    if price.unit == "second":
        return _seconds(price, arguments)
    if price.unit == "megapixel":
        return _megapixels(arguments)
    raise _Unknown(
        f"{price.endpoint_id} is billed per {price.unit!r}, which cannot be computed from "
        f"the input (known units: {', '.join(KNOWN_UNITS)})"
    )


def _seconds(price: UnitPrice, arguments: Mapping[str, Any]) -> tuple[float, str]:
    frames = _number(arguments, "num_frames")
    if price.billed_fps is not None:
        if frames is None:
            raise _Unknown(
                f"{price.endpoint_id} bills num_frames / {_number_text(price.billed_fps)} "
                "seconds, and the input gives no num_frames"
            )
        fps = _number_text(price.billed_fps)
        return frames / price.billed_fps, f"{_number_text(frames)} frames billed at {fps} fps"
    duration = _number(arguments, "duration")
    if duration is not None:
        return duration, "duration"
    rate = _fps(arguments)
    if frames is not None and rate is not None:
        return frames / rate[0], f"num_frames / {rate[1]}"
    raise _Unknown("the input gives no duration, nor num_frames with fps or frame_rate")


def _megapixels(arguments: Mapping[str, Any]) -> tuple[float, str]:
    width, height = _size(arguments)
    frames = _number(arguments, "num_frames")
    if frames is None:
        duration, rate = _number(arguments, "duration"), _fps(arguments)
        if duration is None or rate is None:
            raise _Unknown("the input gives no num_frames, nor duration with fps")
        frames = round(duration * rate[0])
    basis = f"{_number_text(width)}×{_number_text(height)} × {_number_text(frames)} frames"
    return width * height * frames / 1e6, basis


def _size(arguments: Mapping[str, Any]) -> tuple[float, float]:
    size = arguments.get("video_size")
    if isinstance(size, str):
        if size == "auto":
            raise _Unknown("video_size 'auto' takes the input image's size, unknown before upload")
        if size not in SIZE_PRESETS:
            raise _Unknown(f"video_size {size!r} is not one of fal's size presets")
        return SIZE_PRESETS[size]
    if isinstance(size, Mapping):
        width, height = _number(size, "width"), _number(size, "height")
        if width is None or height is None:
            raise _Unknown("video_size needs both width and height")
        return width, height
    if size is not None:
        raise _Unknown(f"video_size is {size!r}, neither a preset nor {{width, height}}")
    width, height = _number(arguments, "width"), _number(arguments, "height")
    if width is None or height is None:
        raise _Unknown("the input gives no video_size, nor width and height")
    return width, height


def _factor(rule: Multiplier, arguments: Mapping[str, Any]) -> tuple[str, float]:
    value = arguments.get(rule.field)
    key = rule.default if value is None else _value_key(value)
    if key is None:
        raise _Unknown(
            f"the price depends on {rule.field} ({', '.join(rule.factors)}), "
            "which the input does not set"
        )
    if key not in rule.factors:
        raise _Unknown(
            f"no price is known for {rule.field}={key} (priced: {', '.join(rule.factors)})"
        )
    return _factor_label(rule.field, key), rule.factors[key]


def _factor_label(field_name: str, key: str) -> str:
    return field_name if key == "true" else f"{field_name} {key}"


def _number_text(value: float) -> str:
    """``8``, ``5.04``, ``71.37``: at most two decimals, none for whole numbers."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _quantity_text(quantity: float, unit: str) -> str:
    if unit == "video":
        return f"{_number_text(quantity)} video"
    return f"{_number_text(quantity)} {_UNIT_SYMBOLS.get(unit, unit)}"


def format_money(amount: float, currency: str, *, unit: bool = False) -> str:
    """``$0.48``; unit prices keep their digits (``$0.0018``); other currencies ``0.48 EUR``.

    Totals below a cent show four decimals, so a tiny estimate never reads ``$0.00``.
    """
    if unit:
        text = f"{amount:.6f}".rstrip("0")
        whole, _, decimals = text.partition(".")
        text = f"{whole}.{decimals.ljust(2, '0')}"
    elif amount != 0 and abs(amount) < 0.01:
        text = f"{amount:.4f}"
    else:
        text = f"{amount:.2f}"
    symbol = _CURRENCY_SYMBOLS.get(currency)
    return f"{symbol}{text}" if symbol else f"{text} {currency}"


def add_up(amounts: Iterable[tuple[float | None, str | None]]) -> tuple[dict[str, float], int]:
    """The total per currency of ``(amount, currency)`` pairs, and how many have no price."""
    totals: dict[str, float] = {}
    unknown = 0
    for amount, currency in amounts:
        if amount is None or currency is None:
            unknown += 1
        else:
            totals[currency] = totals.get(currency, 0.0) + amount
    return totals, unknown


def format_totals(totals: Mapping[str, float]) -> str:
    """``$0.60 + 1.20 EUR``: each currency's total, in the currencies' order; "" for none."""
    return " + ".join(format_money(amount, currency) for currency, amount in sorted(totals.items()))


# -- fal's pricing API, with a day's cache -----------------------------------------------------


def default_cache_dir() -> Path:
    """The user cache directory of ltx-jupyter (``platformdirs``)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("ltx-jupyter"))


def cache_path(
    key: str | None,
    platform_url: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """The price cache file for this key on this platform: ``pricing-<fingerprint>.json``.

    The fingerprint is a SHA-256 digest of the key (with the platform URL, so a local server's
    prices never stand in for fal's); the key itself is never written anywhere.
    """
    url = (platform_url or default_platform_url()).rstrip("/")
    material = f"ltx-jupyter pricing\0{url}\0{key or ''}".encode()
    fingerprint = hashlib.sha256(material).hexdigest()[:32]
    return Path(cache_dir or default_cache_dir()) / f"pricing-{fingerprint}.json"


@dataclass(frozen=True)
class Prices:
    """The outcome of a price lookup: a unit price per endpoint id, or why there is none.

    ``note`` is one line saying why fal's pricing API was not (fully) used, and what stood in
    for it; None when every price is the API's own (fresh or cached).
    """

    prices: Mapping[str, UnitPrice]
    unknown: Mapping[str, str] = field(default_factory=dict)
    note: str | None = None

    def get(self, endpoint_id: str) -> UnitPrice | None:
        """``endpoint_id``'s unit price, if one is known."""
        return self.prices.get(endpoint_id)

    def covers(self, endpoint_ids: Iterable[str]) -> bool:
        """Whether this lookup answered for each of ``endpoint_ids`` (a price, or why none)."""
        return all(i in self.prices or i in self.unknown for i in endpoint_ids)

    def reason(self, endpoint_id: str) -> str:
        """Why ``endpoint_id`` has no price (one line)."""
        return self.unknown.get(endpoint_id, f"no price was looked up for {endpoint_id}")

    def estimate(self, endpoint_id: str, arguments: Mapping[str, Any]) -> Estimate:
        """:func:`estimate` with this lookup's price (or its reason for having none)."""
        price = self.get(endpoint_id)
        reason = None if price is not None else self.reason(endpoint_id)
        return estimate(endpoint_id, arguments, price, reason=reason)


class _APIProblem(Exception):
    """The pricing API answered something unusable; the message says what (one line)."""


@dataclass(frozen=True)
class _Call:
    """One GET of the pricing API: the URL and its query."""

    url: str
    params: tuple[tuple[str, str], ...]


def _read_record(raw: Any) -> dict[str, Any] | None:
    """A cache record, if well formed: a price or ``unpriced``, with ``fetched_at``."""
    if not isinstance(raw, Mapping):
        return None
    fetched = raw.get("fetched_at")
    if not isinstance(fetched, (int, float)) or isinstance(fetched, bool):
        return None
    if raw.get("unpriced") is True:
        return {"unpriced": True, "fetched_at": float(fetched)}
    try:
        return {**_read_price(raw, "cached price"), "fetched_at": float(fetched)}
    except _APIProblem:
        return None


def _read_price(raw: Any, where: str) -> dict[str, Any]:
    """``{unit_price, unit, currency}`` from one entry of the API's ``prices`` list."""
    if not isinstance(raw, Mapping):
        raise _APIProblem(f"{where} is not an object")
    price, unit, currency = raw.get("unit_price"), raw.get("unit"), raw.get("currency")
    if (
        not isinstance(price, (int, float))
        or isinstance(price, bool)
        or not math.isfinite(price)
        or price < 0
    ):
        raise _APIProblem(f"{where}.unit_price is not a non-negative number")
    if not isinstance(unit, str) or not unit.strip():
        raise _APIProblem(f"{where}.unit is not a unit name")
    if not isinstance(currency, str) or not currency.strip():
        raise _APIProblem(f"{where}.currency is not a currency code")
    return {"unit_price": float(price), "unit": _normal_unit(unit), "currency": currency.upper()}


def _normal_unit(unit: str) -> str:
    word = unit.strip().lower()
    # fal names units in the singular; tolerate a plural of the units computed here.
    return word[:-1] if word.endswith("s") and word[:-1] in KNOWN_UNITS else word


def _parse_page(response: httpx.Response, asked: set[str]) -> tuple[dict[str, Any], str | None]:
    """The prices of one answer (by id, only the ids asked for) and the next page's cursor."""
    if response.status_code in (401, 403):
        raise _APIProblem(f"refused the key (HTTP {response.status_code})")
    if response.status_code >= 400:
        raise _APIProblem(f"answered HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise _APIProblem("answered something that is not JSON") from None
    if not isinstance(body, Mapping) or not isinstance(body.get("prices"), list):
        raise _APIProblem("answered without a 'prices' list")
    found: dict[str, Any] = {}
    for i, raw in enumerate(body["prices"]):
        endpoint_id = raw.get("endpoint_id") if isinstance(raw, Mapping) else None
        if not isinstance(endpoint_id, str):
            raise _APIProblem(f"answered prices[{i}] without an endpoint_id")
        if endpoint_id in asked:
            found[endpoint_id] = _read_price(raw, f"prices[{i}]")
    cursor = body.get("next_cursor")
    more = body.get("has_more") is True and isinstance(cursor, str) and cursor != ""
    return found, cursor if more else None


def _age_text(seconds: float) -> str:
    if seconds < 3600:
        return f"{max(1, round(seconds / 60))} min"
    if seconds < 2 * 86400:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} days"


class _Lookup:
    """One price lookup's state, shared by :func:`get_prices` and :func:`aget_prices`.

    It reads the cache, says which ids need asking (:attr:`wanted`), plans the API calls
    (:meth:`plan`, a generator fed each response: no I/O of its own) and turns what it got,
    the cache and the table into :class:`Prices` (:meth:`finish`). It holds the key only to
    build the requests' auth, in the client's secret holder, and never shows it.
    """

    def __init__(
        self,
        endpoint_ids: Iterable[str],
        *,
        key: str | None,
        platform_url: str | None,
        cache_dir: str | os.PathLike[str] | None,
        max_age: float,
        table: PriceTable | None,
        now: float | None,
    ) -> None:
        # The client's own helpers, imported here so that the server, which uses only the
        # table, never imports the client.
        from ._client import _Secret
        from ._fal import credentials_from_env

        self._key = _Secret(key or credentials_from_env())
        self.platform_url = (platform_url or default_platform_url()).rstrip("/")
        self.table = table or load_table()
        self.now = time.time() if now is None else now
        self.ids: list[str] = []
        self.invalid: dict[str, str] = {}
        if isinstance(endpoint_ids, str):
            endpoint_ids = [endpoint_ids]
        for endpoint_id in dict.fromkeys(endpoint_ids):
            if isinstance(endpoint_id, str) and _ENDPOINT_ID.fullmatch(endpoint_id):
                self.ids.append(endpoint_id)
            else:
                self.invalid[str(endpoint_id)] = f"{endpoint_id!r} is not an endpoint id"
        self.path = cache_path(self._key.reveal(), self.platform_url, cache_dir)
        self.cache = self._read_cache()
        self.fresh = {
            i: r
            for i, r in self.cache.items()
            if i in self.ids and 0 <= self.now - r["fetched_at"] < max_age
        }
        self.wanted = [i for i in self.ids if i not in self.fresh]
        self.fetched: dict[str, dict[str, Any]] = {}
        #: Why the API was not asked or failed (one line, never the key); None when it answered.
        self.problem: str | None = None

    def __repr__(self) -> str:
        return f"_Lookup({self.platform_url}, {len(self.ids)} ids)"

    @property
    def api_name(self) -> str:
        if is_fal_url(self.platform_url):
            return "fal's pricing API"
        return f"the pricing API at {self.platform_url}"

    def skip_reason(self) -> str | None:
        """Why the API is not to be asked at all (fal's API needs a key), else None."""
        if not self._key.reveal() and is_fal_url(self.platform_url):
            return f"no FAL_KEY is set to ask {self.api_name}"
        return None

    def auth(self) -> httpx.Auth | None:
        """Adds ``Authorization: Key <key>`` as each request leaves (None without a key).

        No frame of ours holds the key in a local variable: verbose tracebacks print locals.
        """
        from ._client import _KeyAuth

        return _KeyAuth(self._key) if self._key.reveal() else None

    def plan(self) -> Generator[_Call, httpx.Response, None]:
        """Yield each call to make; receive its response; record the prices in ``fetched``.

        :class:`_APIProblem` if an answer is unusable (what was fetched before stays).
        """
        url = f"{self.platform_url}/models/pricing"
        for start in range(0, len(self.wanted), MAX_IDS_PER_CALL):
            chunk = self.wanted[start : start + MAX_IDS_PER_CALL]
            query: tuple[tuple[str, str], ...] = (("endpoint_id", ",".join(chunk)),)
            asked, seen = set(chunk), set()
            for _ in range(_MAX_PAGES):
                response = yield _Call(url, query)
                found, cursor = _parse_page(response, asked)
                stamp = {"fetched_at": self.now}
                self.fetched.update({i: {**p, **stamp} for i, p in found.items()})
                if cursor is None:
                    break
                if cursor in seen:
                    raise _APIProblem("repeated a page cursor")
                seen.add(cursor)
                query = (("endpoint_id", ",".join(chunk)), ("cursor", cursor))
            else:
                raise _APIProblem(f"had more than {_MAX_PAGES} pages of prices")
            for endpoint_id in chunk:
                self.fetched.setdefault(endpoint_id, {"unpriced": True, "fetched_at": self.now})

    def describe_failure(self, exc: Exception) -> str:
        """One line naming the API and what went wrong (never the key)."""
        import httpx

        if isinstance(exc, _APIProblem):
            what = str(exc)
        elif isinstance(exc, httpx.TimeoutException):
            what = "did not answer in time"
        elif isinstance(exc, httpx.TransportError):
            what = f"was unreachable ({type(exc).__name__})"
        else:
            what = f"could not be asked ({type(exc).__name__})"
        return f"{self.api_name} {what}"

    def finish(self) -> Prices:
        """The prices: fetched, else cached (stale ones only after a problem), else the table."""
        problem = self.problem
        if self.fetched:
            self._write_cache()
        prices: dict[str, UnitPrice] = {}
        unknown = dict(self.invalid)
        oldest_stale: float | None = None
        used_table = False
        for endpoint_id in self.ids:
            record = self.fetched.get(endpoint_id) or self.fresh.get(endpoint_id)
            if record is None and problem is not None:
                record = self.cache.get(endpoint_id)
                if record is not None:
                    age = self.now - record["fetched_at"]
                    oldest_stale = max(age, oldest_stale or 0.0)
            if record is not None and not record.get("unpriced"):
                prices[endpoint_id] = self._api_price(endpoint_id, record)
                continue
            price = self.table.price(endpoint_id)
            if price is not None:
                prices[endpoint_id] = price
                used_table = True
            else:
                unknown[endpoint_id] = self.table.unknown_reason(endpoint_id)
        if problem is None:
            return Prices(prices, unknown)
        fallbacks = []
        if oldest_stale is not None:
            fallbacks.append(f"prices cached {_age_text(oldest_stale)} ago")
        if used_table:
            fallbacks.append("the shipped price table")
        using = " and ".join(fallbacks) if fallbacks else "no other price"
        return Prices(prices, unknown, note=f"{problem}; using {using}")

    def _api_price(self, endpoint_id: str, record: Mapping[str, Any]) -> UnitPrice:
        fetched_at = record["fetched_at"]
        entry = self.table.entry(endpoint_id)
        # The table's rules (billing rate, option factors) describe the unit fal's page
        # states; they hold for the API's price only when the API bills the same unit.
        rules = entry if entry is not None and entry.unit == record["unit"] else None
        return UnitPrice(
            endpoint_id=endpoint_id,
            unit_price=record["unit_price"],
            unit=record["unit"],
            currency=record["currency"],
            source=api_source(self.platform_url),
            as_of=datetime.fromtimestamp(fetched_at, timezone.utc).isoformat(timespec="seconds"),
            fetched_at=fetched_at,
            billed_fps=rules.billed_fps if rules else None,
            multipliers=rules.multipliers if rules else (),
        )

    def _read_cache(self) -> dict[str, dict[str, Any]]:
        try:
            document = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            logger.debug("ignoring unreadable price cache %s", self.path)
            return {}
        if (
            not isinstance(document, Mapping)
            or document.get("format") != _CACHE_FORMAT
            or document.get("platform_url") != self.platform_url
            or not isinstance(document.get("prices"), Mapping)
        ):
            logger.debug("ignoring price cache %s: not this version's format", self.path)
            return {}
        records = {}
        for endpoint_id, raw in document["prices"].items():
            record = _read_record(raw)
            if record is not None:
                records[str(endpoint_id)] = record
        return records

    def _write_cache(self) -> None:
        """Merge the fetched prices into the cache file, atomically; errors are ignored."""
        merged = {**self.cache, **self.fetched}
        document = {"format": _CACHE_FORMAT, "platform_url": self.platform_url, "prices": merged}
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(prefix=".pricing-", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(document, handle, indent=1, sort_keys=True)
                os.replace(temporary, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        except OSError as exc:
            logger.debug("could not write the price cache %s: %s", self.path, exc.strerror)


#: Pricing APIs that could not be asked, by cache file (one per URL and key): why.
_unreachable: RecentFailures[Path, str] = RecentFailures()


def _start(lookup: _Lookup, refresh: bool) -> Generator[_Call, httpx.Response, None] | None:
    """The calls to make for ``lookup`` (None: nothing to ask, or the API is not to be asked
    now: no key for fal's, or it failed a moment ago and this is no refresh, which
    ``lookup.problem`` then says)."""
    if not lookup.wanted:
        return None
    lookup.problem = lookup.skip_reason()
    if lookup.problem is None and not refresh:
        lookup.problem = _unreachable.recall(lookup.path)
    return lookup.plan() if lookup.problem is None else None


def _failed(lookup: _Lookup, exc: Exception) -> None:
    """Record why the API could not be asked, in ``lookup`` and for a while after."""
    lookup.problem = lookup.describe_failure(exc)
    _unreachable.remember(lookup.path, lookup.problem)


def _advance(plan: Generator[_Call, httpx.Response, None], response: Any) -> _Call | None:
    try:
        return plan.send(response)
    except StopIteration:
        return None


def get_prices(
    endpoint_ids: Sequence[str],
    *,
    key: str | None = None,
    platform_url: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    max_age: float = CACHE_MAX_AGE,
    timeout: float = 5.0,
    table: PriceTable | None = None,
    now: float | None = None,
    refresh: bool = False,
) -> Prices:
    """The unit prices of ``endpoint_ids``: fal's pricing API, its day cache, or the table.

    ``key`` defaults to ``FAL_KEY`` (or ``FAL_KEY_ID``/``FAL_KEY_SECRET``); ``platform_url``
    to :func:`default_platform_url`; ``cache_dir`` to :func:`default_cache_dir`; ``table``
    to the shipped one. Prices cached less than ``max_age`` seconds ago (at ``now``, default
    the current time) are used without asking. An API that could not be reached is not
    asked again for a while (``ltx_jupyter._failures``); ``refresh`` asks it now, whatever
    the cache holds or a failure a moment ago. Never raises for an unreachable or refusing
    API: the result's ``note`` says what happened and which prices stood in.
    """
    lookup = _Lookup(
        endpoint_ids,
        key=key,
        platform_url=platform_url,
        cache_dir=cache_dir,
        max_age=0.0 if refresh else max_age,
        table=table,
        now=now,
    )
    plan = _start(lookup, refresh)
    if plan is not None:
        import httpx

        try:
            with httpx.Client(timeout=timeout, auth=lookup.auth(), headers=_ACCEPT) as client:
                call = _advance(plan, None)
                while call is not None:
                    call = _advance(plan, client.get(call.url, params=call.params))
        except Exception as exc:
            _failed(lookup, exc)
        else:
            _unreachable.forget(lookup.path)
    return lookup.finish()


async def aget_prices(
    endpoint_ids: Sequence[str],
    *,
    key: str | None = None,
    platform_url: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    max_age: float = CACHE_MAX_AGE,
    timeout: float = 5.0,
    table: PriceTable | None = None,
    now: float | None = None,
    refresh: bool = False,
) -> Prices:
    """:func:`get_prices` on an ``httpx.AsyncClient``, for the event loop."""
    lookup = _Lookup(
        endpoint_ids,
        key=key,
        platform_url=platform_url,
        cache_dir=cache_dir,
        max_age=0.0 if refresh else max_age,
        table=table,
        now=now,
    )
    plan = _start(lookup, refresh)
    if plan is not None:
        import httpx

        try:
            async with httpx.AsyncClient(
                timeout=timeout, auth=lookup.auth(), headers=_ACCEPT
            ) as client:
                call = _advance(plan, None)
                while call is not None:
                    call = _advance(plan, await client.get(call.url, params=call.params))
        except Exception as exc:
            _failed(lookup, exc)
        else:
            _unreachable.forget(lookup.path)
    return lookup.finish()
