"""The ``diffusers`` engine: real LTX-Video through Hugging Face ``diffusers``.

``ltx-jupyter serve --engine diffusers --model PATH_OR_REPO_ID`` loads one pipeline when the
server starts (``LTXPipeline`` for text-to-video; ``LTXImageToVideoPipeline``, sharing the same
weights, for image-to-video) and runs every job on it. It needs the ``diffusers`` extra
(``pip install 'ltx-jupyter[diffusers]'``); nothing else in the package imports torch.

Start-up (all failures are one-line ``ValueError`` s that ``ltx-jupyter serve`` prints):

- ``model``: a local directory in diffusers format (it holds ``model_index.json``), or a
  Hugging Face repository id (``Lightricks/LTX-Video``) taken from the local Hugging Face cache;
  it is downloaded only with ``allow_download=True`` (``--allow-download``).
- ``device``: ``auto`` (CUDA; no GPU is an error, not a silent fall-back to hours on the CPU),
  ``cuda`` or ``cpu``. ``dtype``: ``auto`` is bfloat16 on GPUs that support it, else float16;
  float32 on the CPU.
- Before the weights go to the GPU, their size plus a margin is compared with the GPU's free
  memory; too little is an error that names ``--cpu-offload`` and ``--vae-tiling``.
- ``cpu_offload``: keep each model on the CPU until it runs (accelerate's model offload).
  ``vae_tiling``: decode the video in tiles (less memory for large sizes).

A job maps the endpoint's fields onto the pipeline: ``prompt``, ``negative_prompt``,
``num_inference_steps``, ``guidance_scale``, ``seed`` (a CPU ``torch.Generator``, so the same
seed gives the same video on any device), ``image_url`` (an http(s) URL, a data: URI or a file
uploaded to this server: image-to-video), and the extra fields ``width``, ``height`` (multiples
of 32), ``num_frames`` (8k+1) and ``fps`` or ``frame_rate``.

Log lines, in order (level INFO unless noted), in the synthetic engine's shape::

    diffusers engine: LTX-Video from Lightricks/LTX-Video on cuda (bfloat16)
    seed 42, 30 steps, guidance 3, 768x512, 121 frames at 24 fps
    step 1/30            one line per denoising step, from the pipeline's step callback
    ...
    step 30/30
    decoding 121 frames
    encoding 121 frames
    done in 41.20 s

Cancelling sets the pipeline's interrupt flag at the next step callback and stops the run
there (the VAE decode is skipped); it logs ``cancelled after {k} of {n} steps`` (WARN) and
raises :class:`EngineCancelled`. GPU memory is released after every job.

One job runs at a time: jobs take a lock around the pipeline. With the server's
``--concurrency`` above 1, the extra workers wait for the lock while their requests show
``IN_PROGRESS`` (logging ``waiting for the GPU``), so ``ltx-jupyter serve`` defaults to 1 for
this engine and waiting requests stay ``IN_QUEUE`` with a queue position.
"""

from __future__ import annotations

import gc
import io
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..._errors import FieldError
from ..._schema import is_integer, is_number
from ..video import write_mp4
from .base import (
    EngineCancelled,
    EngineError,
    EngineOutput,
    EngineTask,
    endpoint_defaults,
    random_seed,
    range_error,
)
from .conditioning import data_uri_bytes

if TYPE_CHECKING:
    import torch

__all__ = ["DiffusersEngine", "check_size"]

VIDEO_NAME = "video.mp4"
#: LTX-Video's constraints: sizes are multiples of 32, frame counts are 8k+1.
SIZE_MULTIPLE = 32
FRAME_MULTIPLE = 8
SIZE_RANGE = (32, 2048)
FRAMES_RANGE = (1, 257)
FPS_RANGE = (1, 60)
STEPS_RANGE = (1, 100)
GUIDANCE_RANGE = (0, 20)
#: Bytes an image_url may point at.
MAX_IMAGE_BYTES = 50 * 1024 * 1024
#: GPU memory asked for beyond the weights (activations, VAE decode), in bytes: an estimate.
ACTIVATION_MARGIN = 2 * 1024**3
DEVICES = ("auto", "cuda", "cpu")
DTYPES = ("auto", "bfloat16", "float16", "float32")
INSTALL_HINT = "pip install 'ltx-jupyter[diffusers]'"


class _Stop(Exception):
    """Raised from the step callback to leave the pipeline once a job is cancelled."""


def check_size(name: str, value: Any) -> str | None:
    """Why ``value`` is not a valid ``width``/``height``/``num_frames`` for LTX, or None."""
    if name in ("width", "height"):
        low, high = SIZE_RANGE
        allowed = f"a multiple of {SIZE_MULTIPLE} from {low} to {high}"
        if not is_integer(value) or not low <= value <= high or value % SIZE_MULTIPLE:
            return f"must be {allowed} (LTX-Video's constraint), got {value!r}"
        return None
    low, high = FRAMES_RANGE
    allowed = f"of the form {FRAME_MULTIPLE}k+1 from {low} to {high} (e.g. 9, 25, 49, 97, 121)"
    if not is_integer(value) or not low <= value <= high or (value - 1) % FRAME_MULTIPLE:
        return f"must be an integer {allowed} (LTX-Video's constraint), got {value!r}"
    return None


def _gib(size: float) -> str:
    return f"{size / 1024**3:.1f} GiB"


def _import_backend() -> tuple[Any, Any]:
    """``(torch, diffusers)``, or a one-line ``ValueError`` saying how to install them."""
    try:
        import torch
    except ImportError as exc:
        raise ValueError(
            f"the diffusers engine needs PyTorch, which is not installed ({exc}): "
            f"{INSTALL_HINT} (on a GPU machine, with a CUDA build of torch)"
        ) from None
    try:
        import diffusers
        import transformers  # noqa: F401  (the text encoder and tokenizer)
    except ImportError as exc:
        raise ValueError(
            f"the diffusers engine needs the 'diffusers' extra ({exc}): {INSTALL_HINT}"
        ) from None
    return torch, diffusers


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class DiffusersEngine:
    """LTX-Video on ``diffusers``; see the module docstring. Loads the model when built."""

    name = "diffusers"

    def __init__(
        self,
        *,
        model: str | None = None,
        allow_download: bool = False,
        device: str = "auto",
        dtype: str = "auto",
        cpu_offload: bool = False,
        vae_tiling: bool = False,
        width: int = 768,
        height: int = 512,
        num_frames: int = 121,
        fps: float = 24.0,
        max_sequence_length: int = 128,
        **unknown: Any,
    ) -> None:
        if unknown:
            names = ", ".join(sorted(unknown))
            raise ValueError(f"the diffusers engine does not take the option(s) {names}")
        for option, value in (("width", width), ("height", height), ("num_frames", num_frames)):
            problem = check_size(option, value)
            if problem is not None:
                raise ValueError(f"{option} {problem}")
        if not is_number(fps) or not FPS_RANGE[0] <= fps <= FPS_RANGE[1]:
            raise ValueError(f"fps must be a number from 1 to 60, got {fps!r}")
        if device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        if not model:
            raise ValueError(
                "the diffusers engine needs --model: a local diffusers-format directory or a "
                "Hugging Face repository id such as Lightricks/LTX-Video"
            )
        self.width = width
        self.height = height
        self.num_frames = num_frames
        self.fps = float(fps)
        self.max_sequence_length = max_sequence_length
        self.model = str(model)
        self.cpu_offload = bool(cpu_offload)
        self.vae_tiling = bool(vae_tiling)
        self._lock = threading.Lock()
        self._torch, diffusers = _import_backend()
        source = self._resolve(allow_download)
        self.device = self._pick_device(device)
        if self.cpu_offload and self.device != "cuda":
            raise ValueError("--cpu-offload needs a CUDA device; drop it with --device cpu")
        self.dtype = self._pick_dtype(dtype)
        self._t2v = self._load(diffusers, source, allow_download)
        self._i2v = diffusers.LTXImageToVideoPipeline(**self._t2v.components)
        for pipe in (self._t2v, self._i2v):
            pipe.set_progress_bar_config(disable=True)
        self._offloaded: Any = None
        self._place()

    # -- start-up ----------------------------------------------------------------------------

    def _pick_device(self, device: str) -> str:
        torch = self._torch
        if device == "cpu":
            return "cpu"
        if not torch.cuda.is_available():
            build = f"torch {torch.__version__}, CUDA {torch.version.cuda or 'none'}"
            raise ValueError(
                f"no CUDA GPU found ({build}): run on a machine with an NVIDIA GPU and a CUDA "
                "build of torch, or pass --device cpu to run on the CPU (float32, very slow)"
            )
        return "cuda"

    def _pick_dtype(self, dtype: str) -> torch.dtype:
        torch = self._torch
        if dtype == "auto":
            if self.device == "cpu":
                return torch.float32
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return getattr(torch, dtype)  # type: ignore[no-any-return]

    def _resolve(self, allow_download: bool) -> str:
        """The directory or repository id to load; a one-line error if it is not there."""
        source = self.model
        local = Path(source).expanduser()
        looks_like_path = local.exists() or source.startswith((".", "/", "~")) or "\\" in source
        if looks_like_path or source.count("/") != 1:
            if not local.is_dir():
                raise ValueError(
                    f"model directory {source} does not exist: pass a diffusers-format "
                    "directory (with model_index.json) or a Hugging Face repository id"
                )
            if not (local / "model_index.json").is_file():
                raise ValueError(
                    f"{source} is not a diffusers-format model (no model_index.json); save one "
                    "with pipeline.save_pretrained(DIR) or pass a repository id"
                )
            source = str(local)
        elif not allow_download and not self._cached(source):
            raise ValueError(
                f"model {source} is not in the local Hugging Face cache: download it first "
                f"(hf download {source}) or pass --allow-download to fetch it at start-up"
            )
        return source

    def _load(self, diffusers: Any, source: str, allow_download: bool) -> Any:
        """The text-to-video pipeline from a local directory or the Hugging Face cache."""
        from diffusers.pipelines import pipeline_utils

        # Newer diffusers call it ``dtype`` (``torch_dtype`` is deprecated); older know only that.
        key = "dtype" if hasattr(pipeline_utils, "_resolve_dtype") else "torch_dtype"
        try:
            return diffusers.LTXPipeline.from_pretrained(
                source, local_files_only=not allow_download, **{key: self.dtype}
            )
        except Exception as exc:
            raise ValueError(
                f"could not load the LTX-Video pipeline from {source}: {_first_line(exc)}"
            ) from None

    @staticmethod
    def _cached(repo_id: str) -> bool:
        """True if the repository's ``model_index.json`` is in the local Hugging Face cache."""
        try:
            from huggingface_hub import try_to_load_from_cache

            return isinstance(try_to_load_from_cache(repo_id, "model_index.json"), str)
        except Exception:
            return False

    def _weights_bytes(self) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for name, component in self._t2v.components.items():
            parameters = getattr(component, "parameters", None)
            if callable(parameters):
                sizes[name] = sum(p.numel() * p.element_size() for p in parameters())
        return sizes

    def _place(self) -> None:
        """Move the weights to the device, after checking the GPU has room for them."""
        if self.vae_tiling:
            self._t2v.vae.enable_tiling()
        if self.device == "cpu":
            return
        torch = self._torch
        sizes = self._weights_bytes()
        needed = (max(sizes.values()) if self.cpu_offload else sum(sizes.values())) + (
            ACTIVATION_MARGIN
        )
        free, total = torch.cuda.mem_get_info()
        gpu = torch.cuda.get_device_name()
        if needed > free:
            advice = (
                "add --vae-tiling, free the GPU or use one with more memory"
                if self.cpu_offload
                else "pass --cpu-offload (and --vae-tiling), or use a GPU with more memory"
            )
            raise ValueError(
                f"not enough GPU memory: the model needs about {_gib(needed)} and {gpu} has "
                f"{_gib(free)} free of {_gib(total)}; {advice}"
            )
        try:
            if self.cpu_offload:
                self._activate(self._t2v)
            else:
                self._t2v.to("cuda")
        except torch.cuda.OutOfMemoryError:
            raise ValueError(
                f"out of GPU memory while loading the model onto {gpu}: pass --cpu-offload "
                "(and --vae-tiling), or use a GPU with more memory"
            ) from None

    def _activate(self, pipe: Any) -> None:
        """With CPU offload, install the offload hooks for ``pipe`` (they are per pipeline)."""
        if self.cpu_offload and self._offloaded is not pipe:
            pipe.enable_model_cpu_offload(device="cuda")
            self._offloaded = pipe

    def describe(self) -> str:
        """Where the model runs, for the first log line of each job."""
        dtype = str(self.dtype).removeprefix("torch.")
        options = (("CPU offload", self.cpu_offload), ("VAE tiling", self.vae_tiling))
        extras = [label for label, on in options if on]
        suffix = f", {', '.join(extras)}" if extras else ""
        return f"LTX-Video from {self.model} on {self.device} ({dtype}{suffix})"

    # -- requests ----------------------------------------------------------------------------

    def validate(self, endpoint_id: str, data: Mapping[str, Any]) -> list[FieldError]:
        """Check the fields this engine uses, LTX's size and frame constraints included."""
        errors: list[FieldError] = []
        image = data.get("image_url")
        if image is not None and (not isinstance(image, str) or not image):
            errors.append(
                FieldError(
                    ("body", "image_url"),
                    "must be an http(s) URL, a data: URI or the URL of an uploaded file",
                    "url_parsing",
                )
            )
        for name in ("width", "height", "num_frames"):
            value = data.get(name)
            if value is not None:
                problem = check_size(name, value)
                if problem is not None:
                    errors.append(FieldError(("body", name), problem, "value_error"))
        checks: list[tuple[str, float, float, bool]] = [
            ("num_inference_steps", *STEPS_RANGE, True),
            ("guidance_scale", *GUIDANCE_RANGE, False),
            ("fps", *FPS_RANGE, False),
            ("frame_rate", *FPS_RANGE, False),
        ]
        for name, low, high, integer in checks:
            value = data.get(name)
            if value is not None:
                error = range_error(name, value, low, high, integer=integer)
                if error is not None:
                    errors.append(error)
        return errors

    def _image(self, task: EngineTask, url: str) -> Any:
        """The image behind ``url`` (a data: URI, an upload to this server or an http(s) URL)."""
        from PIL import Image

        if url.lower().startswith("data:"):
            data = data_uri_bytes(url)
        else:
            data = task.read_local_file(url)
            if data is None:
                if not url.lower().startswith(("http://", "https://")):
                    raise EngineError(
                        "image_url must be an http(s) URL or a data: URI", error_type="bad_request"
                    )
                data = self._download(url)
        if not data:
            raise EngineError("image_url holds no image data", error_type="bad_request")
        try:
            with Image.open(io.BytesIO(data)) as image:
                return image.convert("RGB")
        except Exception as exc:
            raise EngineError(
                f"image_url is not an image this server can read ({_first_line(exc)})",
                error_type="bad_request",
            ) from None

    @staticmethod
    def _download(url: str) -> bytes:
        import httpx

        try:
            with httpx.stream("GET", url, timeout=30.0, follow_redirects=True) as response:
                response.raise_for_status()
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > MAX_IMAGE_BYTES:
                        raise EngineError(
                            f"image_url is larger than {MAX_IMAGE_BYTES // 1024**2} MiB",
                            error_type="bad_request",
                        )
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise EngineError(
                f"could not fetch image_url: {_first_line(exc)}", error_type="bad_request"
            ) from None
        return b"".join(chunks)

    def run(self, task: EngineTask) -> EngineOutput:
        """Run one job on the pipeline (one at a time), then encode the frames to MP4."""
        waiting = False
        while not self._lock.acquire(timeout=0.2):
            if not waiting:
                task.log("waiting for the GPU: another job is running")
                waiting = True
            if task.cancelled():
                task.log("cancelled while waiting for the GPU", "WARN")
                raise EngineCancelled()
        try:
            return self._run(task)
        finally:
            self._release()
            self._lock.release()

    def _release(self) -> None:
        """Give the GPU memory of the finished job back (for the next job and other programs)."""
        gc.collect()
        if self.device == "cuda":
            self._torch.cuda.empty_cache()

    def _run(self, task: EngineTask) -> EngineOutput:
        torch = self._torch
        started = time.monotonic()
        task.log(f"diffusers engine: {self.describe()}")
        data = task.input
        defaults = endpoint_defaults(task.endpoint_id)
        seed = data.get("seed")
        if seed is None:
            seed = random_seed()
        seed = int(seed)
        steps = int(data.get("num_inference_steps") or defaults["num_inference_steps"])
        guidance = float(data.get("guidance_scale", defaults["guidance_scale"]))
        negative = data.get("negative_prompt", defaults["negative_prompt"])
        width, height = data.get("width"), data.get("height")
        if width is None and height is None and data.get("aspect_ratio") == "9:16":
            width, height = self.height, self.width
        width, height = int(width or self.width), int(height or self.height)
        num_frames = int(data.get("num_frames") or self.num_frames)
        fps = float(data.get("fps") or data.get("frame_rate") or self.fps)
        image_url = data.get("image_url")
        image = self._image(task, image_url) if image_url else None
        task.log(
            f"seed {seed}, {steps} steps, guidance {guidance:g}, {width}x{height}, "
            f"{num_frames} frames at {fps:g} fps" + (", from an image" if image else "")
        )
        if task.cancelled():
            task.log(f"cancelled after 0 of {steps} steps", "WARN")
            raise EngineCancelled()

        done = 0

        def on_step(
            pipe: Any, index: int, timestep: Any, tensors: dict[str, Any]
        ) -> dict[str, Any]:
            nonlocal done
            done = index + 1
            task.log(f"step {done}/{steps}")
            if task.cancelled():
                pipe._interrupt = True  # the pipeline's own flag: skip the remaining steps
                raise _Stop()
            if done == steps:
                task.log(f"decoding {num_frames} frames")
            return {}

        pipe = self._i2v if image is not None else self._t2v
        self._activate(pipe)
        arguments: dict[str, Any] = {
            "prompt": str(data.get("prompt", "")),
            "negative_prompt": negative,
            "width": width,
            "height": height,
            "num_frames": num_frames,
            "frame_rate": fps,
            "num_inference_steps": steps,
            "guidance_scale": guidance,
            "generator": torch.Generator(device="cpu").manual_seed(seed),
            "output_type": "np",
            "callback_on_step_end": on_step,
            "max_sequence_length": self.max_sequence_length,
        }
        if image is not None:
            arguments["image"] = image
        try:
            with torch.inference_mode():
                video = pipe(**arguments).frames[0]
        except _Stop:
            if self.cpu_offload:
                pipe.maybe_free_model_hooks()
            task.log(f"cancelled after {done} of {steps} steps", "WARN")
            raise EngineCancelled() from None
        except torch.cuda.OutOfMemoryError:
            raise EngineError(
                f"out of GPU memory at {width}x{height}, {num_frames} frames: try a smaller size "
                "or fewer frames, or restart the server with --cpu-offload --vae-tiling"
            ) from None

        frames = np.clip(np.asarray(video, dtype=np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        del video
        count = int(frames.shape[0])
        task.log(f"encoding {count} frames")
        path = task.output_dir / VIDEO_NAME
        size = write_mp4(iter(frames), path, fps)
        task.log(f"done in {time.monotonic() - started:.2f} s")
        out_height, out_width = int(frames.shape[1]), int(frames.shape[2])
        video_file = {
            "url": task.file_url(VIDEO_NAME),
            "content_type": "video/mp4",
            "file_name": VIDEO_NAME,
            "file_size": size,
            "width": out_width,
            "height": out_height,
            "fps": fps,
            "duration": round(count / fps, 6),
            "num_frames": count,
        }
        return EngineOutput(output={"video": video_file, "seed": seed}, files=[VIDEO_NAME])
