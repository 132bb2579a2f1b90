"""fal's platform pricing API, answered from the server's price table.

Routes (fal's paths under its platform base ``/v1``)::

    GET  /v1/models/pricing?endpoint_id=a,b     unit prices (1-50 ids; repeated endpoint_id= too)
    POST /v1/models/pricing/estimate            a total cost from unit or call quantities

Prices come from ``ServerConfig.prices`` (default: the table shipped in
``ltx_jupyter/data/prices.json``); ids without a price are left out of the answer, as fal leaves
out what it cannot price. Invalid queries and bodies get 422 with fal's ``detail`` list. The
server's auth middleware requires the key on these routes when the server has one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .._errors import FieldError
from .._pricing import MAX_IDS_PER_CALL, PriceTable, load_table
from .config import ServerConfig
from .middleware import BodyTooLarge, error_response, read_body

__all__ = ["platform_routes"]

#: Largest estimate body accepted (50 endpoints fit in a few kilobytes).
MAX_ESTIMATE_BYTES = 64 * 1024
ESTIMATE_TYPES = ("unit_price", "historical_api_price")
Handler = Callable[[Request], Awaitable[Response]]


def _invalid(*errors: FieldError) -> JSONResponse:
    return error_response(422, [e.to_detail() for e in errors])


class _PricingAPI:
    """The pricing routes' handlers over one price table."""

    def __init__(self, table: PriceTable, page_size: int) -> None:
        self.table = table
        self.page_size = page_size

    def _ids(self, values: list[str], loc: tuple[str, ...]) -> list[str] | FieldError:
        """The endpoint ids of ``a,b`` or repeated values, or the error saying what is wrong."""
        ids = list(dict.fromkeys(i.strip() for v in values for i in v.split(",") if i.strip()))
        if not ids:
            return FieldError(loc, "give 1 to 50 endpoint ids, e.g. endpoint_id=fal-ai/ltx-video")
        if len(ids) > MAX_IDS_PER_CALL:
            return FieldError(
                loc,
                f"at most {MAX_IDS_PER_CALL} endpoint ids per call, got {len(ids)}",
                "too_long",
            )
        return ids

    async def pricing(self, request: Request) -> Response:
        """``GET /v1/models/pricing``: ``{"prices": [...], "next_cursor", "has_more"}``."""
        ids = self._ids(request.query_params.getlist("endpoint_id"), ("query", "endpoint_id"))
        if isinstance(ids, FieldError):
            return _invalid(ids)
        prices = []
        for endpoint_id in ids:
            entry = self.table.entry(endpoint_id)
            if entry is not None:
                prices.append(
                    {
                        "endpoint_id": endpoint_id,
                        "unit_price": entry.unit_price,
                        "unit": entry.unit,
                        "currency": entry.currency,
                    }
                )
        cursor = request.query_params.get("cursor")
        start = 0
        if cursor is not None:
            if not cursor.isdigit() or int(cursor) >= max(len(prices), 1):
                return _invalid(
                    FieldError(
                        ("query", "cursor"),
                        "is not a cursor this server gave; pass next_cursor as it was answered",
                    )
                )
            start = int(cursor)
        end = start + self.page_size
        more = end < len(prices)
        return JSONResponse(
            {
                "prices": prices[start:end],
                "next_cursor": str(end) if more else None,
                "has_more": more,
            }
        )

    async def estimate(self, request: Request) -> Response:
        """``POST /v1/models/pricing/estimate``: ``{"estimate_type", "total_cost", "currency"}``.

        ``unit_price`` multiplies each endpoint's unit price by its ``unit_quantity``. This
        server keeps no price history, so ``historical_api_price`` answers unit price ×
        ``call_quantity``.
        """
        body = await _read_json(request)
        if isinstance(body, FieldError):
            return _invalid(body)
        if not isinstance(body, Mapping):
            return _invalid(FieldError(("body",), "must be a JSON object", "model_attributes_type"))
        kind = body.get("estimate_type")
        if kind not in ESTIMATE_TYPES:
            allowed = " or ".join(repr(t) for t in ESTIMATE_TYPES)
            return _invalid(
                FieldError(("body", "estimate_type"), f"must be {allowed}", "literal_error")
            )
        endpoints = body.get("endpoints")
        if not isinstance(endpoints, Mapping):
            return _invalid(
                FieldError(
                    ("body", "endpoints"),
                    'must be an object such as {"fal-ai/ltx-2/text-to-video": '
                    '{"unit_quantity": 8}}',
                    "dict_type",
                )
            )
        if not 1 <= len(endpoints) <= MAX_IDS_PER_CALL:
            return _invalid(
                FieldError(
                    ("body", "endpoints"),
                    f"give 1 to {MAX_IDS_PER_CALL} endpoints, got {len(endpoints)}",
                )
            )
        quantity_name = "unit_quantity" if kind == "unit_price" else "call_quantity"
        errors: list[FieldError] = []
        total = Decimal(0)
        currencies: set[str] = set()
        for endpoint_id, item in endpoints.items():
            loc = ("body", "endpoints", endpoint_id, quantity_name)
            quantity = item.get(quantity_name) if isinstance(item, Mapping) else None
            if not _quantity_ok(quantity, whole=kind != "unit_price"):
                what = "a non-negative integer" if kind != "unit_price" else "a non-negative number"
                errors.append(FieldError(loc, f"must be {what}, got {quantity!r}"))
                continue
            entry = self.table.entry(endpoint_id.strip())
            if entry is None:
                reason = self.table.unknown_reason(endpoint_id.strip())
                errors.append(FieldError(("body", "endpoints", endpoint_id), reason))
                continue
            currencies.add(entry.currency)
            total += Decimal(str(entry.unit_price)) * Decimal(str(quantity))
        if not errors and len(currencies) > 1:
            listed = ", ".join(sorted(currencies))
            errors.append(
                FieldError(
                    ("body", "endpoints"),
                    f"the endpoints are priced in different currencies ({listed})",
                )
            )
        if errors:
            return _invalid(*errors)
        return JSONResponse(
            {
                "estimate_type": kind,
                "total_cost": float(total),
                "currency": currencies.pop() if currencies else "USD",
            }
        )


def _quantity_ok(value: Any, *, whole: bool) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    if whole and not (isinstance(value, int) or value.is_integer()):
        return False
    return math.isfinite(value) and value >= 0


async def _read_json(request: Request) -> Any:
    """The request's JSON body, or a :class:`FieldError` (too large, not JSON)."""
    try:
        body = await read_body(request, MAX_ESTIMATE_BYTES)
    except BodyTooLarge:
        return FieldError(("body",), f"is larger than {MAX_ESTIMATE_BYTES} bytes", "too_long")
    try:
        return json.loads(body or b"null")
    except ValueError:
        return FieldError(("body",), "is not valid JSON", "json_invalid")


def _only(method: str, handler: Handler) -> Handler:
    """``handler`` for ``method``; 405 for any other, so no method reaches the submit route."""

    async def route(request: Request) -> Response:
        if request.method != method and not (method == "GET" and request.method == "HEAD"):
            return error_response(
                405, f"Method not allowed: use {method}", headers={"Allow": method}
            )
        return await handler(request)

    return route


def platform_routes(config: ServerConfig) -> list[Route]:
    """The pricing routes for ``config``'s price table (``ValueError`` if it is invalid).

    They answer every method (405 for the wrong one), so that they must come before the
    catch-all submit route.
    """
    api = _PricingAPI(load_table(config.prices), config.pricing_page_size)
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return [
        Route("/v1/models/pricing", _only("GET", api.pricing), methods=methods),
        Route("/v1/models/pricing/estimate", _only("POST", api.estimate), methods=methods),
    ]
