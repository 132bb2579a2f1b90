"""The local server's settings."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["MAX_BODY_BYTES", "MAX_UPLOAD_BYTES", "ServerConfig"]

MAX_UPLOAD_BYTES = 100 * 1024 * 1024
#: Largest JSON body a submit (or an upload's initiate) may carry; larger ones get 413.
MAX_BODY_BYTES = 10 * 1024 * 1024


def _fresh_data_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="ltx-server-"))


@dataclass
class ServerConfig:
    """How the local fal-compatible server runs.

    ``key``: when set, every route but ``/health`` and ``/files/...`` needs
    ``Authorization: Key <key>``. ``engine`` names an engine of
    :func:`ltx_jupyter.server.engines.get_engine`; ``width``, ``height``, ``num_frames``,
    ``fps`` and ``step_seconds`` are its defaults (None: the engine's own). The synthetic
    engine draws a requested size at ``scale`` times it (default 1/6: 1080p 16:9 draws
    320x180) with its long side at most ``max_side`` (default 640), and at most
    ``max_frames`` frames (default 121; a longer clip keeps its duration at a lower frame
    rate); it reports what it drew. ``concurrency``
    jobs run at once, the rest queue. ``data_dir`` holds outputs and uploads (default: a fresh
    temporary directory). ``ping_interval``: seconds between ``: ping`` comments on status
    streams. ``public_url``: the base URL put in answers (default: the request's own base URL).
    ``max_upload_bytes`` bounds an uploaded file, ``max_body_bytes`` a submit's JSON body (413
    beyond). ``allowed_origins``: browser origins (``http://localhost:8888``, or ``*``) whose
    cross-origin requests are served; any other request carrying an ``Origin`` header that is
    not the server's own gets 403. Media loads of ``/files/...`` are always served.
    ``engine_settings``: further options of the chosen engine, passed to it as they are (the
    ``diffusers`` engine's ``model``, ``allow_download``, ``device``, ``dtype``,
    ``cpu_offload``, ``vae_tiling``).
    ``prices``: the price table served at ``/v1/models/pricing`` (fal's platform pricing API),
    a document in ``ltx_jupyter/data/prices.json``'s format or the path of one (default: that
    shipped table); ``pricing_page_size`` prices per page of its answers.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    key: str | None = field(default=None, repr=False)
    engine: str = "synthetic"
    concurrency: int = 2
    data_dir: Path = field(default_factory=_fresh_data_dir)
    width: int | None = None
    height: int | None = None
    num_frames: int | None = None
    fps: float | None = None
    step_seconds: float | None = None
    scale: float | None = None
    max_side: int | None = None
    max_frames: int | None = None
    #: Extra DEBUG log lines per step (synthetic engine), to measure log streaming.
    log_lines_per_step: int | None = None
    ping_interval: float = 5.0
    public_url: str | None = None
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_body_bytes: int = MAX_BODY_BYTES
    allowed_origins: tuple[str, ...] = ()
    engine_settings: dict[str, Any] = field(default_factory=dict)
    prices: Mapping[str, Any] | str | Path | None = None
    pricing_page_size: int = 50
    #: Endpoint documents beyond the shipped ones: endpoint id -> fal OpenAPI document (decoded
    #: JSON, or the path of a JSON file). The server validates against and serves them.
    documents: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.ping_interval <= 0:
            raise ValueError(f"ping_interval must be positive, got {self.ping_interval}")
        if self.public_url is not None:
            self.public_url = self.public_url.rstrip("/")
        if isinstance(self.allowed_origins, str):
            self.allowed_origins = (self.allowed_origins,)
        self.allowed_origins = tuple(o.strip().rstrip("/") for o in self.allowed_origins)
        if self.max_body_bytes < 1 or self.max_upload_bytes < 1:
            raise ValueError("max_body_bytes and max_upload_bytes must be positive")
        if self.pricing_page_size < 1:
            raise ValueError(f"pricing_page_size must be at least 1, got {self.pricing_page_size}")

    def engine_options(self) -> dict[str, Any]:
        """The options passed to the engine (unset ones left to its defaults)."""
        options = {
            "width": self.width,
            "height": self.height,
            "num_frames": self.num_frames,
            "fps": self.fps,
            "step_seconds": self.step_seconds,
            "scale": self.scale,
            "max_side": self.max_side,
            "max_frames": self.max_frames,
            "log_lines_per_step": self.log_lines_per_step,
            **self.engine_settings,
        }
        return {k: v for k, v in options.items() if v is not None}
