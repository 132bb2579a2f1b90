"""``ltx-jupyter serve``: run the local fal-compatible server from a shell.

It prints one line, ``LTX_QUEUE_URL=http://127.0.0.1:8000``, then serves until interrupted.
The key comes from ``--key`` or the ``LTX_SERVER_KEY`` environment variable and is never
printed.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .config import ServerConfig
from .engines import available_engines

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``ltx-jupyter`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="ltx-jupyter", description="ltx-jupyter tools: a fal-compatible local server."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser(
        "serve", help="run the local fal-compatible queue server (the default command)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    serve.add_argument(
        "--port", type=int, default=8000, help="port, 0 for a free one (default: %(default)s)"
    )
    serve.add_argument(
        "--key",
        default=None,
        help="require 'Authorization: Key <KEY>' (default: $LTX_SERVER_KEY, else no key)",
    )
    serve.add_argument(
        "--engine",
        default="synthetic",
        help=f"engine: {', '.join(available_engines())} (default: %(default)s)",
    )
    serve.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="jobs run at once (default: 2; 1 with --engine diffusers, which runs one job "
        "at a time on the GPU)",
    )
    serve.add_argument(
        "--data-dir", default=None, help="where outputs and uploads go (default: a temp dir)"
    )
    serve.add_argument("--width", type=int, default=None, help="default clip width")
    serve.add_argument("--height", type=int, default=None, help="default clip height")
    serve.add_argument("--frames", type=int, default=None, help="default number of frames")
    serve.add_argument("--fps", type=float, default=None, help="default frames per second")
    serve.add_argument(
        "--step-seconds", type=float, default=None, help="synthetic engine: seconds per step"
    )
    serve.add_argument(
        "--scale",
        type=float,
        default=None,
        help="synthetic engine: draw a requested size at SCALE times it (default: 1/6, so "
        "1080p 16:9 draws 320x180); the answer reports the size drawn",
    )
    serve.add_argument(
        "--max-side",
        type=int,
        default=None,
        help="synthetic engine: the longest side drawn, in pixels (default: 640)",
    )
    serve.add_argument(
        "--max-frames",
        type=int,
        default=None,
        help="synthetic engine: the most frames drawn (default: 121); a longer clip keeps "
        "its duration at a lower frame rate",
    )
    serve.add_argument(
        "--log-lines-per-step",
        type=int,
        default=None,
        help="synthetic engine: extra DEBUG log lines per step (log-volume benchmarks)",
    )
    serve.add_argument(
        "--public-url", default=None, help="base URL put in answers (default: the request's)"
    )
    serve.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="serve cross-origin browser requests from ORIGIN, e.g. http://localhost:8888 "
        "(repeatable; '*' for any). Default: refuse them (403)",
    )
    serve.add_argument(
        "--log-level", default="info", help="uvicorn log level (default: %(default)s)"
    )
    real = serve.add_argument_group(
        "diffusers engine (real LTX-Video; needs: pip install 'ltx-jupyter[diffusers]')"
    )
    real.add_argument(
        "--model",
        default=None,
        metavar="PATH_OR_REPO_ID",
        help="a diffusers-format directory, or a Hugging Face repo id in the local cache "
        "(e.g. Lightricks/LTX-Video)",
    )
    real.add_argument(
        "--allow-download",
        action="store_true",
        default=None,
        help="download the model from the Hugging Face hub if it is not cached",
    )
    real.add_argument(
        "--device",
        choices=("auto", "cuda", "cpu"),
        default=None,
        help="auto (default): CUDA, an error without a GPU; cpu: float32, very slow",
    )
    real.add_argument(
        "--dtype",
        choices=("auto", "bfloat16", "float16", "float32"),
        default=None,
        help="auto (default): bfloat16 where the GPU supports it, else float16; float32 on CPU",
    )
    real.add_argument(
        "--cpu-offload",
        action="store_true",
        default=None,
        help="keep each model on the CPU until it runs (less GPU memory, slower)",
    )
    real.add_argument(
        "--vae-tiling",
        action="store_true",
        default=None,
        help="decode the video in tiles (less GPU memory for large sizes)",
    )
    return parser


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app
    from .local import UvicornServer, bind_socket, url_for

    options = {
        "host": args.host,
        "port": args.port,
        "key": args.key or os.environ.get("LTX_SERVER_KEY") or None,
        "engine": args.engine,
        "concurrency": args.concurrency or (1 if args.engine == "diffusers" else 2),
        "width": args.width,
        "height": args.height,
        "num_frames": args.frames,
        "fps": args.fps,
        "step_seconds": args.step_seconds,
        "scale": args.scale,
        "max_side": args.max_side,
        "max_frames": args.max_frames,
        "log_lines_per_step": args.log_lines_per_step,
        "public_url": args.public_url,
        "allowed_origins": tuple(args.allow_origin),
    }
    if args.data_dir:
        options["data_dir"] = args.data_dir
    settings = {
        "model": args.model,
        "allow_download": args.allow_download,
        "device": args.device,
        "dtype": args.dtype,
        "cpu_offload": args.cpu_offload,
        "vae_tiling": args.vae_tiling,
    }
    options["engine_settings"] = {k: v for k, v in settings.items() if v is not None}
    try:
        config = ServerConfig(**options)
        app = create_app(config)
        sock = bind_socket(config.host, config.port)
    except (ValueError, OSError) as exc:
        print(f"ltx-jupyter serve: {exc}", file=sys.stderr)
        return 2
    url = config.public_url or url_for(config.host, sock.getsockname()[1])
    print(f"LTX_QUEUE_URL={url}", flush=True)
    uvicorn_config = uvicorn.Config(
        app, log_level=args.log_level, lifespan="on", timeout_graceful_shutdown=3
    )
    server = UvicornServer(uvicorn_config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ltx-jupyter``; ``serve`` is the default command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["serve", *argv]
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    parser.print_help()
    return 2
