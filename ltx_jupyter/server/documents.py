"""The endpoint documents the local server knows: the package's shipped fal OpenAPI documents,
plus any the server is configured with (``ServerConfig.documents``). The server validates
submits against them and serves them at fal's OpenAPI path."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._endpoints import shipped_document
from .._openapi import EndpointSchema, parse_document

__all__ = ["EndpointDocuments"]


class EndpointDocuments:
    """Documents by endpoint id: configured ones first, then the shipped ones.

    ``extra`` maps endpoint ids to documents (decoded JSON) or to paths of JSON files; each is
    read and checked at start-up, so a broken one stops the server with its reason.
    """

    def __init__(self, extra: Mapping[str, Any] | None = None) -> None:
        self._extra: dict[str, dict[str, Any]] = {}
        self._schemas: dict[str, EndpointSchema | None] = {}
        for endpoint_id, source in (extra or {}).items():
            document = _read(source)
            schema = parse_document(document, endpoint_id.strip("/"))
            self._extra[schema.endpoint_id] = document
            self._schemas[schema.endpoint_id] = schema

    def document(self, endpoint_id: str) -> dict[str, Any] | None:
        """The decoded document of ``endpoint_id`` (a copy), or None."""
        if endpoint_id in self._extra:
            return copy.deepcopy(self._extra[endpoint_id])
        return shipped_document(endpoint_id)

    def schema(self, endpoint_id: str) -> EndpointSchema | None:
        """The parsed schema of ``endpoint_id`` (read once), or None for an endpoint the
        server has no document for (it then checks only what its engine needs)."""
        if endpoint_id not in self._schemas:
            document = shipped_document(endpoint_id)
            self._schemas[endpoint_id] = (
                parse_document(document, endpoint_id) if document is not None else None
            )
        return self._schemas[endpoint_id]

    def defaults(self, endpoint_id: str) -> dict[str, Any]:
        """The endpoint's input defaults ({} without a document)."""
        schema = self.schema(endpoint_id)
        return schema.defaults() if schema is not None else {}


def _read(source: Any) -> dict[str, Any]:
    if isinstance(source, (str, os.PathLike)):
        return json.loads(Path(source).read_bytes())  # type: ignore[no-any-return]
    if not isinstance(source, Mapping):
        raise ValueError(f"a document must be a JSON object or a path, got {type(source).__name__}")
    return copy.deepcopy(dict(source))
