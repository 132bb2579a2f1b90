"""``%%ltx`` and ``%ltx``: the IPython face of ltx-jupyter.

The magic stays thin: :mod:`._parsing` turns the line into an input, :mod:`._jobs` runs it,
:mod:`._views` and :mod:`._display` show it. Configuration is traitlets on
:class:`LtxMagics` (``%config LtxMagics.steps = 40`` or ``ipython_config.py``).
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, argument_group, magic_arguments
from IPython.display import display, publish_display_data
from traitlets import Bool, Bunch, Float, Int, TraitError, Unicode, default, observe, validate

from ._errors import LtxError
from ._fal import (
    PRIORITIES,
    default_openapi_url,
    default_queue_url,
    default_storage_url,
    split_endpoint_id,
)
from ._history import HistoryStore
from ._html import is_http_url
from ._parsing import (
    FIELD_OF_SETTING,
    RunRequest,
    build_request,
    parse_lora,
    parse_number,
    parse_size,
    split_line,
    usage_error,
)
from ._schema import DEFAULT_ENDPOINT, check_input, lookup_schema, resolve_endpoint
from ._text import value_repr

if TYPE_CHECKING:
    from ._jobs import ConcurrencyLimit, Job, JobOptions, JobSession
    from ._pricing import Estimate

__all__ = ["LtxMagics", "load_ipython_extension", "unload_ipython_extension"]

SUBCOMMANDS = (
    "jobs",
    "show",
    "cancel",
    "resume",
    "panel",
    "endpoints",
    "schema",
    "compare",
    "gallery",
)


@magics_class
class LtxMagics(Magics):
    """Generate LTX videos from cells; jobs run in the background on one worker thread."""

    endpoint = Unicode(
        DEFAULT_ENDPOINT, help="Endpoint id used when a cell gives no --endpoint."
    ).tag(config=True)
    queue_url = Unicode(
        help="Queue base URL (default: LTX_QUEUE_URL, else https://queue.fal.run)."
    ).tag(config=True)
    storage_url = Unicode(
        help="Storage base URL for uploads (default: LTX_STORAGE_URL, else fal's, or the "
        "queue URL for a local server)."
    ).tag(config=True)
    steps = Int(
        None, allow_none=True, help="Default --steps (None: the endpoint's default, 30)."
    ).tag(config=True)
    guidance = Float(
        None, allow_none=True, help="Default --guidance (None: the endpoint's default, 3)."
    ).tag(config=True)
    negative_prompt = Unicode(
        None, allow_none=True, help="Default --negative (None: the endpoint's default)."
    ).tag(config=True)
    wait = Bool(
        None,
        allow_none=True,
        help="Block until each job ends. None: only when the notebook runs headless "
        "(nbclient, papermill, nbconvert), so executed notebooks hold their videos.",
    ).tag(config=True)
    save_dir = Unicode(
        "", help="Folder to download every finished video into ('' : keep the URL only)."
    ).tag(config=True)
    timeout = Float(
        None, allow_none=True, help="Client deadline in seconds per job (None: no deadline)."
    ).tag(config=True)
    log_lines = Int(20, help="Log lines shown in a job view (the job keeps all).").tag(config=True)
    max_cost = Float(
        None,
        allow_none=True,
        help="Most a cell may cost, in USD (None: no limit): a cell whose estimate is higher "
        "is refused before any request.",
    ).tag(config=True)
    strict_fields = Bool(
        True,
        help="A field the endpoint's schema does not have is an error (fal ignores unknown "
        "fields, so a typo would silently run with the default). False: a warning.",
    ).tag(config=True)
    history_file = Unicode(
        "", help="Journal of submitted requests ('': LTX_HISTORY_FILE or the user data dir)."
    ).tag(config=True)
    max_concurrent = Int(
        4,
        help="Most sweep jobs in flight at once (submitted, not ended); the others wait in "
        "the client, so the server never sees more.",
    ).tag(config=True)

    @validate("max_concurrent")
    def _valid_max_concurrent(self, proposal: Bunch) -> int:
        if proposal["value"] < 1:
            raise TraitError(
                f"LtxMagics.max_concurrent: must be 1 or more, got {proposal['value']}"
            )
        return int(proposal["value"])

    @observe("max_concurrent")
    def _max_concurrent_changed(self, change: Any) -> None:
        self._limit = None  # running sweeps keep theirs; the next ones get the new cap

    @validate("endpoint")
    def _valid_endpoint(self, proposal: Bunch) -> str:
        try:
            submit_path, _ = split_endpoint_id(resolve_endpoint(proposal["value"]))
        except LtxError as error:
            raise TraitError(f"LtxMagics.endpoint: {error}") from None
        return submit_path

    @validate("queue_url", "storage_url")
    def _valid_base_url(self, proposal: Bunch) -> str:
        url = str(proposal["value"]).strip()
        if not is_http_url(url):
            name = proposal["trait"].name
            raise TraitError(
                f"LtxMagics.{name}: must be an http:// or https:// URL, got {value_repr(url)}"
            )
        return url.rstrip("/")

    @validate("steps", "guidance", "negative_prompt")
    def _valid_field_default(self, proposal: Bunch) -> Any:
        """A default for an endpoint field must be a value the configured endpoint accepts,
        so a mistake shows when it is set, not at the next run."""
        value, name = proposal["value"], proposal["trait"].name
        field = FIELD_OF_SETTING[name]
        schema = lookup_schema(self.endpoint, url=self._openapi_url).schema
        if value is None or schema is None or schema.field(field) is None:
            return value
        for error in check_input(self.endpoint, {field: value}, schema=schema):
            if error.field == field:
                raise TraitError(f"LtxMagics.{name}: {error.msg} (on {self.endpoint})")
        return value

    @validate("max_cost")
    def _valid_max_cost(self, proposal: Bunch) -> float | None:
        value = proposal["value"]
        if value is not None and not value >= 0:
            raise TraitError(f"LtxMagics.max_cost: must be 0 or more (USD), got {value}")
        return value

    @property
    def _openapi_url(self) -> str:
        return default_openapi_url(self.queue_url)

    @validate("timeout")
    def _valid_timeout(self, proposal: Bunch) -> float | None:
        value = proposal["value"]
        if value is not None and not value > 0:
            raise TraitError(
                f"LtxMagics.timeout: must be a positive number of seconds, got {value}"
            )
        return value

    @validate("log_lines")
    def _valid_log_lines(self, proposal: Bunch) -> int:
        if proposal["value"] < 0:
            raise TraitError(f"LtxMagics.log_lines: must be 0 or more, got {proposal['value']}")
        return int(proposal["value"])

    @default("queue_url")
    def _default_queue_url(self) -> str:
        return default_queue_url()

    @default("storage_url")
    def _default_storage_url(self) -> str:
        return default_storage_url(self.queue_url)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        self._session: JobSession | None = None
        self._limit: ConcurrencyLimit | None = None
        super().__init__(shell=shell, **kwargs)
        self.views: dict[int, Any] = {}
        #: The grids shown by sweeps and compares, closed with the extension.
        self.grids: list[Any] = []

    # The jobs' machinery (the client, httpx, asyncio) loads with the first use of the
    # session, not with %load_ext.
    @property
    def session(self) -> JobSession:
        """The jobs of this shell: run, followed, and journalled in the history."""
        if self._session is None:
            from ._jobs import JobSession

            self._session = JobSession(history=HistoryStore(self.history_file or None))
        return self._session

    @property
    def limit(self) -> ConcurrencyLimit:
        """The cap on sweep jobs in flight (``max_concurrent``), shared with the panel."""
        if self._limit is None:
            from ._jobs import ConcurrencyLimit

            self._limit = ConcurrencyLimit(self.max_concurrent)
        return self._limit

    @observe("history_file")
    def _history_file_changed(self, change: Any) -> None:
        if self._session is not None:
            self._session.history = HistoryStore(change["new"] or None)

    # -- the magic ---------------------------------------------------------------------------

    @magic_arguments()
    @argument("prompt", nargs="*", help="One-line form only: the prompt after the options.")
    @argument_group("Input (each option sets its field on every endpoint that has it)")
    @argument("--negative", metavar="TEXT", help="Negative prompt (default: the endpoint's).")
    @argument("--seed", type=int, metavar="N", help="Seed (default: random, shown with the video).")
    @argument("--steps", type=int, metavar="N", help="Denoising steps (num_inference_steps).")
    @argument("--guidance", type=float, metavar="X", help="Guidance scale (guidance_scale).")
    @argument("--resolution", metavar="R", help="Resolution: 480p, 720p, 1080p, 2160p...")
    @argument("--aspect-ratio", metavar="W:H", help="Aspect ratio: 16:9, 9:16, 1:1...")
    @argument("--duration", type=parse_number, metavar="S", help="Length in seconds.")
    @argument("--frames", type=int, metavar="N", help="Frame count (num_frames).")
    @argument("--fps", type=parse_number, metavar="N", help="Frame rate (fps or frame_rate).")
    @argument("--size", type=parse_size, metavar="WxH|PRESET", help="Video size (video_size).")
    @argument(
        "--audio",
        dest="audio",
        action="store_const",
        const=True,
        default=None,
        help="Generate a sound track (generate_audio).",
    )
    @argument("--no-audio", dest="audio", action="store_const", const=False, help="No sound.")
    @argument(
        "--lora",
        type=parse_lora,
        action="append",
        metavar="PATH[:SCALE]",
        help="A LoRA's URL or Hugging Face path, and its scale (repeatable; loras).",
    )
    @argument(
        "--endpoint",
        metavar="ID",
        help=f"Endpoint id, with or without 'fal-ai/' (default {DEFAULT_ENDPOINT}; "
        "%%ltx endpoints lists the known ones).",
    )
    @argument(
        "--image",
        metavar="PATH_OR_URL",
        help="First frame: a URL, a data: URI or a local file (uploaded, or inlined when "
        "small). With a text-to-video endpoint, its family's image-to-video one is used.",
    )
    @argument("--end-image", metavar="PATH_OR_URL", help="Last frame (end_image_url).")
    @argument("--video", metavar="PATH_OR_URL", help="Video to extend or transform.")
    @argument("--audio-file", metavar="PATH_OR_URL", help="Audio input (audio_url).")
    @argument(
        "--sweep",
        action="append",
        metavar="FIELD=V1,V2,...",
        help="Run one job per value (repeatable, up to 3 axes: rows, columns, tabs of a "
        "grid); FIELD is an option (guidance) or a field (guidance_scale) or endpoint; values "
        "as JSON; seed=random:N draws N seeds.",
    )
    @argument(
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help="Any other endpoint field, VALUE read as JSON (repeatable): --param num_frames=121.",
    )
    @argument_group("Running")
    @argument(
        "--wait",
        dest="wait",
        action="store_const",
        const=True,
        default=None,
        help="Block until the job ends (interrupt the kernel to cancel it).",
    )
    @argument(
        "--no-wait",
        dest="wait",
        action="store_const",
        const=False,
        help="Return at once, even when running headless (default: return at once "
        "interactively, wait headless).",
    )
    @argument(
        "--dry-run",
        action="store_true",
        help="Show the validated input and its estimated cost; send nothing.",
    )
    @argument("--timeout", type=float, metavar="SECONDS", help="Client deadline; then cancel.")
    @argument("--priority", choices=PRIORITIES, help="Queue priority (default normal).")
    @argument("--webhook", metavar="URL", help="URL fal POSTs the result to when it ends.")
    @argument_group("Output")
    @argument("-o", "--out", metavar="NAME", help="Store the Job in this variable.")
    @argument(
        "--save",
        metavar="DIR",
        help="Download the video into DIR and show it by relative path (default: URL only).",
    )
    @argument(
        "--embed", action="store_true", help="Embed the video's bytes in the notebook (large)."
    )
    @no_var_expand  # the line is literal: {braces} and $names are the user's text
    @line_cell_magic
    def ltx(self, line: str = "", cell: str | None = None) -> Job | None:
        """Generate a video with LTX Video: the cell body is the prompt, taken literally.

        ::

            %%ltx --seed 42 --steps 40 --guidance 5 -o fall
            A man stands waist-deep in a crystal-clear mountain pool, ...

        Line forms: ``job = %ltx --seed 3 a red fox`` (a one-line prompt; start it with
        ``--`` if it begins with a command word), ``%ltx jobs``, ``%ltx show ID``,
        ``%ltx cancel ID|all``, ``%ltx resume REQUEST_ID``, ``%ltx panel`` (the parameter
        panel; ``panel = %ltx panel`` keeps it), ``%ltx endpoints [TEXT] [--refresh]``,
        ``%ltx schema ID``. Defaults come from ``%config LtxMagics``.
        """
        words = split_line(line)
        if cell is None and words and words[0] in SUBCOMMANDS:
            return self._subcommand(words[0], words[1:])
        args = self._parse(words)
        if cell is not None:
            if args.prompt:
                raise UsageError(
                    f"%%ltx: unexpected text {' '.join(args.prompt)!r} on the magic line; "
                    "the cell body is the prompt (quote option values with spaces)"
                )
            prompt = cell
        else:
            prompt = " ".join(args.prompt)
        if args.sweep:
            sweep = self._run_sweep(args, prompt)
            return sweep if cell is None else None
        request = build_request(
            args,
            prompt,
            default_endpoint=self.endpoint,
            defaults=self._field_defaults(),
            strict=self.strict_fields,
            openapi_url=self._openapi_url,
        )
        estimate = self.session.estimate(request.input, self.queue_url)
        if request.dry_run:
            from ._display import DryRun

            plan = DryRun(request.input, estimate)
            self._keep(request, plan)
            display(plan)
            return None
        self._check_cost(estimate)
        job = self._start(request, estimate)
        return job if cell is None else None

    def _check_cost(self, estimate: Estimate) -> None:
        """Refuse a cell over ``max_cost`` before any request (and one whose price is unknown,
        when a limit is set: it cannot be shown to be within it)."""
        if self.max_cost is None:
            return
        from ._pricing import format_money

        limit = format_money(self.max_cost, "USD")
        if estimate.amount is None:
            raise UsageError(
                f"%ltx: {estimate.describe()}, and LtxMagics.max_cost is {limit}; "
                "raise or unset it (%config LtxMagics.max_cost = None) to run anyway"
            )
        if estimate.amount > self.max_cost:
            raise UsageError(
                f"%ltx: the estimate is {estimate.describe()}, over LtxMagics.max_cost "
                f"({limit}); raise it with %config LtxMagics.max_cost = ... to run this cell"
            )

    def _parse(self, words: list[str]) -> Any:
        if words and words[0] == "--":
            words = ["--", *words[1:]]
        return self.ltx.parser.parse_args(words)

    # -- running and showing ---------------------------------------------------------------------

    def _field_defaults(self) -> dict[str, Any]:
        """The endpoint field values the settings give (``steps``: ``num_inference_steps``)."""
        return {field: getattr(self, name) for name, field in FIELD_OF_SETTING.items()}

    def _keep(self, request: RunRequest, value: Any) -> None:
        """``-o NAME``: store what the cell made in the user's namespace."""
        if request.out:
            self.shell.user_ns[request.out] = value

    def _resume_options(self) -> JobOptions:
        from ._jobs import JobOptions

        return JobOptions(timeout=self.timeout, save_dir=self.save_dir or None)

    def _job_options(self, request: RunRequest) -> JobOptions:
        from ._jobs import JobOptions

        return JobOptions(
            timeout=request.timeout if request.timeout is not None else self.timeout,
            priority=request.priority,
            webhook_url=request.webhook_url,
            save_dir=request.save_dir or self.save_dir or None,
            embed=request.embed,
        )

    def _start(self, request: RunRequest, estimate: Estimate) -> Job:
        options = self._job_options(request)
        try:
            job = self.session.start(
                request.endpoint,
                request.input,
                options,
                queue_url=self.queue_url,
                storage_url=self.storage_url,
                estimate=estimate,
            )
        except LtxError as error:
            raise usage_error(error) from None
        _notes(request.warnings)
        self._keep(request, job)
        self._show(job, request.wait)
        return job

    def _should_wait(self, wait: bool | None) -> bool:
        if wait is not None:
            return wait
        if self.wait is not None:
            return self.wait
        return self._headless()

    def _headless(self) -> bool:
        """Whether a program runs this notebook (nbclient and all built on it).

        Frontends where a person works send ``allow_stdin`` with each execution; nbclient
        does not, since nobody could answer.
        """
        kernel = getattr(self.shell, "kernel", None)
        return kernel is not None and not getattr(kernel, "_allow_stdin", True)

    def _show(self, job: Job, wait: bool | None) -> None:
        from ._views import JobView, follow_in_text

        blocking = self._should_wait(wait)
        has_kernel = getattr(self.shell, "kernel", None) is not None
        if not has_kernel and blocking:
            # Terminal IPython waiting: the text status and log lines are the whole view.
            follow_in_text(job, sys.stdout)
            self._show_outcome(job)
            return
        if has_kernel and self._headless():
            if not blocking:
                print(job.status_line())
                return
        else:
            view = JobView(
                job,
                log_lines=self.log_lines,
                save_dir=self.save_dir or ".",
                show_video=not blocking,
            )
            self.views[job.local_id] = view
            display(view)
            if not blocking:
                return
        # The job keeps its error; _show_outcome raises it.
        with contextlib.suppress(Exception):
            job.wait()
        self._show_outcome(job)

    def _show_outcome(self, job: Job) -> None:
        if job.result is None:
            error = job.error
            if isinstance(error, LtxError):
                raise error
            if error is not None:
                raise error
            return
        if self._headless():
            print(job.status_line())
        from ._display import job_mimebundle

        # The bundle is known: publishing it spares IPython asking each of its ten formatters
        # about the object first, a third of a waiting cell's CPU on the kernel thread.
        publish_display_data(*job_mimebundle(job))

    # -- sweeps ---------------------------------------------------------------------------------

    def _run_sweep(self, args: Any, prompt: str) -> Any:
        """``%%ltx --sweep ...``: every combination validated and priced, then started."""
        from ._grid import SweepDryRun
        from ._sweeps import parse_axis, plan_from_args, start_sweep

        axes = [parse_axis(text) for text in args.sweep]
        plan, request = plan_from_args(
            args,
            prompt,
            axes,
            session=self.session,
            queue_url=self.queue_url,
            default_endpoint=self.endpoint,
            defaults=self._field_defaults(),
            strict=self.strict_fields,
            openapi_url=self._openapi_url,
        )
        if request.dry_run:
            display(SweepDryRun(plan))
            return None
        plan.check_budget(self.max_cost)
        try:
            sweep = start_sweep(
                plan,
                self.session,
                self._job_options(request),
                limit=self.limit,
                queue_url=self.queue_url,
                storage_url=self.storage_url,
            )
        except LtxError as error:
            raise usage_error(error) from None
        _notes(plan.notes)
        self._keep(request, sweep)
        self._show_sweep(sweep, request.wait)
        return sweep

    def _show_sweep(self, sweep: Any, wait: bool | None) -> None:
        """The sweep's live grid (interactive), or its status, then its HTML grid once done
        (headless); a blocking wait is cancelled, whole, by an interrupt."""
        from ._grid import sweep_grid, sweep_html

        blocking = self._should_wait(wait)
        has_kernel = getattr(self.shell, "kernel", None) is not None
        headless = has_kernel and self._headless()
        grid = None
        if not headless:
            grid = sweep_grid(sweep)
            self.grids.append(grid)
            display(grid)
        else:
            print(sweep.status_line())
        if not blocking:
            return
        sweep.wait()
        if grid is not None:
            grid.refresh()
        if has_kernel and not headless:
            return
        print(sweep.status_line())
        if has_kernel:
            display(sweep_html(sweep))

    # -- %ltx subcommands -----------------------------------------------------------------------

    def _subcommand(self, name: str, words: list[str]) -> Any:
        return getattr(self, f"_cmd_{name}")(words)

    def _cmd_jobs(self, words: list[str]) -> None:
        from ._display import jobs_table

        if words:
            raise UsageError("%ltx jobs takes no arguments")
        # The journal's last line is not the truth for a request whose kernel died: ask the
        # server (on the runner, bounded; "unknown" for one it does not answer for).
        entries = self.session.history.entries()
        remote = self.session.read_statuses(self.session.unfinished_entries(entries))
        display(jobs_table(self.session, entries, remote))

    def _cmd_show(self, words: list[str]) -> None:
        from ._display import entry_video

        job_id = self._one_id("show", words)
        job = self.session.find(job_id)
        if job is not None:
            if job.result is not None:
                from ._display import job_video

                display(job_video(job))
            elif job.local_id in self.views:
                display(self.views[job.local_id])
            else:
                print(job.status_line())
            return
        entry = self._history_entry(job_id)
        if entry.video_url:
            display(entry_video(entry))
        else:
            print(f"ltx {entry.request_id} · {entry.status or 'unknown'} · no video recorded")

    #: The last panel ``%ltx panel`` built: ``%ltx gallery``'s "load" fills it while it is open.
    _last_panel: Any = None

    def _cmd_panel(self, words: list[str]) -> Any:
        from ._panel import Panel

        if words:
            raise UsageError("%ltx panel takes no arguments")
        try:
            panel = Panel(
                session=self.session,
                endpoint=self.endpoint,
                queue_url=self.queue_url,
                storage_url=self.storage_url,
                steps=self.steps,
                guidance=self.guidance,
                negative_prompt=self.negative_prompt,
                save_dir=self.save_dir or None,
                log_lines=self.log_lines,
                timeout=self.timeout,
                max_cost=self.max_cost,
                shell=self.shell,
                # Asked at each sweep: %config LtxMagics.max_concurrent replaces the limit.
                limit=lambda: self.limit,
            )
        except ValueError as error:
            raise UsageError(f"%ltx panel: {error}") from None
        self._last_panel = panel
        return panel

    def _cmd_endpoints(self, words: list[str]) -> None:
        """``%ltx endpoints [TEXT] [--refresh]``: the known endpoints (shipped, and cached from
        fal), those whose id, family, category or title holds TEXT, with their unit prices.
        ``--refresh`` fetches the cached documents and the prices again, and documents that
        could not be fetched a moment ago at their next lookup."""
        from ._display import endpoints_table
        from ._endpoints import (
            cached_endpoints,
            forget_unreachable,
            known_endpoints,
            refresh_schema,
        )

        refresh = "--refresh" in words
        rest = [w for w in words if w != "--refresh"]
        if len(rest) > 1 or any(w.startswith("--") for w in rest):
            raise UsageError("%ltx endpoints takes an optional TEXT and --refresh")
        text = rest[0] if rest else ""
        notes = []
        if refresh:
            forget_unreachable()
            for endpoint_id in cached_endpoints():
                lookup = refresh_schema(endpoint_id, url=self._openapi_url)
                if lookup.warning:
                    notes.append(lookup.warning)
        infos = [*known_endpoints(), *self._cached_infos()]
        needle = text.lower()
        matching = [
            info
            for info in infos
            if not needle
            or any(
                needle in (part or "").lower()
                for part in (info.endpoint_id, info.family, info.category, info.title)
            )
        ]
        prices = self.session.prices(
            [info.endpoint_id for info in matching], self.queue_url, refresh=refresh
        )
        _notes(notes)
        display(endpoints_table(matching, prices, text=text, note=prices.note))

    def _cached_infos(self) -> list[Any]:
        from ._endpoints import EndpointInfo, cached_endpoints, family_of, is_shipped, local_schema

        infos = []
        for endpoint_id in cached_endpoints():
            lookup = local_schema(endpoint_id)
            if is_shipped(endpoint_id) or lookup is None or lookup.schema is None:
                continue
            schema = lookup.schema
            infos.append(
                EndpointInfo(endpoint_id, family_of(endpoint_id), schema.category, endpoint_id)
            )
        return infos

    def _cmd_schema(self, words: list[str]) -> None:
        """``%ltx schema ID``: every field of the endpoint, with type, allowed values, default
        and description."""
        from ._display import schema_table

        if len(words) != 1:
            raise UsageError("%ltx schema takes one endpoint ID")
        try:
            endpoint_id, _ = split_endpoint_id(resolve_endpoint(words[0]))
            lookup = lookup_schema(endpoint_id, url=self._openapi_url)
        except LtxError as error:
            raise UsageError(f"%ltx schema: {error}") from None
        if lookup.schema is None:
            raise UsageError(f"%ltx schema: {lookup.warning or f'no schema for {endpoint_id}'}")
        display(schema_table(lookup.schema, source=lookup.source))

    def _cmd_cancel(self, words: list[str]) -> None:
        target = self._one_id("cancel", words)
        if target == "all":
            cancelled = self.session.cancel_all()
            print(f"ltx: asked to cancel {len(cancelled)} job(s)")
            return
        job = self.session.find(target)
        if job is None:
            entry = self._history_entry(target)
            try:
                answer = self.session.cancel_request(
                    entry.request_id, entry.endpoint, entry.queue_url
                )
            except LtxError as error:
                raise usage_error(error) from None
            print(f"ltx {entry.request_id}: {answer}")
            return
        job.cancel()
        print(f"ltx {job.request_id or job.short_id}: cancellation requested")

    def _cmd_resume(self, words: list[str]) -> Job:
        args = words
        wait = None
        if "--wait" in args:
            wait, args = True, [w for w in args if w != "--wait"]
        if "--no-wait" in args:
            wait, args = False, [w for w in args if w != "--no-wait"]
        request_id = self._one_id("resume", args)
        if request_id.startswith("sweep-"):
            return self._resume_sweep(request_id, wait)
        followed = self.session.find(request_id)
        if followed is not None and not followed.done:
            self._show(followed, wait)  # already followed here: its view again, not a second
            return followed
        try:
            job = self.session.resume(
                request_id,
                queue_url=self.queue_url,
                storage_url=self.storage_url,
                options=self._resume_options(),
            )
        except (LtxError, ValueError) as error:
            raise UsageError(f"%ltx resume: {error}") from None
        self._show(job, wait)
        return job

    def _resume_sweep(self, sweep_id: str, wait: bool | None) -> Any:
        """``%ltx resume SWEEP_ID``: the whole grid of a recorded sweep, followed again."""
        from ._sweeps import resume_sweep

        try:
            record = self.session.history.get_sweep(sweep_id)
        except ValueError as error:
            raise UsageError(f"%ltx resume: {error}") from None
        if record is None:
            raise UsageError(
                f"%ltx resume: no sweep {sweep_id!r} in the history ({self.session.history.path})"
            )
        try:
            sweep = resume_sweep(
                record,
                self.session,
                queue_url=self.queue_url,
                storage_url=self.storage_url,
                options=self._resume_options(),
            )
        except (LtxError, ValueError) as error:
            raise UsageError(f"%ltx resume: {error}") from None
        self._show_sweep(sweep, wait)
        return sweep

    def _cmd_compare(self, words: list[str]) -> Any:
        """``%ltx compare ID ID [...]``: jobs side by side in one synchronized player, with
        their inputs' differences highlighted."""
        from ._compare import compare

        return compare(self, words)

    def _cmd_gallery(self, words: list[str]) -> Any:
        """``%ltx gallery [TEXT] [--endpoint ID] [--status S]``: every run in the history; with
        a panel of ``%ltx panel`` open, each tile's "load" puts its run into that panel."""
        from ._gallery import gallery

        panel = self._last_panel
        open_panel = panel is not None and not panel.closed
        return gallery(self, words, on_load=panel.load_input if open_panel else None)

    @staticmethod
    def _one_id(command: str, words: list[str]) -> str:
        if len(words) != 1:
            what = "ID or all" if command == "cancel" else "REQUEST_ID"
            raise UsageError(f"%ltx {command} takes one {what}")
        return words[0]

    def _history_entry(self, request_id: str) -> Any:
        try:
            return self.session.recorded(request_id)
        except ValueError as error:
            raise UsageError(f"%ltx: {error}") from None

    def close(self) -> None:
        """Stop following jobs (remote requests go on) and stop the worker thread."""
        for view in self.views.values():
            view.close()
        self.views.clear()
        for grid in self.grids:
            grid.close()
        self.grids.clear()
        if self._session is not None:
            self._session.close()


_loaded: dict[int, LtxMagics] = {}


def _notes(notes: Sequence[str]) -> None:
    for note in notes:
        print(f"ltx: note: {note}", file=sys.stderr)


# The display code loads with the first job shown, not with the extension.
def _job_mimebundle(job: Job) -> Any:
    from ._display import job_mimebundle

    return job_mimebundle(job)


def _sweep_mimebundle(sweep: Any) -> Any:
    from ._grid import sweep_mimebundle

    return sweep_mimebundle(sweep)


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext ltx_jupyter``: register the magics (idempotent) and their config."""
    if id(shell) in _loaded:
        return
    try:
        magics = LtxMagics(shell=shell)
    except TraitError as error:  # a value from ipython_config.py the settings refuse
        raise UsageError(
            f"%load_ext ltx_jupyter: {error}; fix it in ipython_config.py or with %config"
        ) from None
    shell.register_magics(magics)
    # A Job shown as a cell's value is its video (or its status line until it has one).
    shell.display_formatter.mimebundle_formatter.for_type_by_name(
        "ltx_jupyter._jobs", "Job", _job_mimebundle
    )
    shell.display_formatter.mimebundle_formatter.for_type_by_name(
        "ltx_jupyter._sweeps", "Sweep", _sweep_mimebundle
    )
    if magics not in shell.configurables:
        shell.configurables.append(magics)
    _loaded[id(shell)] = magics
    # In a kernel, a job shows as a widget: its view (and ipywidgets) comes in the same way.
    in_kernel = getattr(shell, "kernel", None) is not None
    modules = ["ltx_jupyter._jobs", *(["ltx_jupyter._views"] if in_kernel else [])]
    threading.Thread(
        target=_preload, args=(modules,), name="ltx-jupyter-preload", daemon=True
    ).start()


def _preload(modules: Sequence[str]) -> None:
    """Import the jobs' machinery (the client, httpx, asyncio: most of what the extension
    loads) and, in a kernel, the job view's widgets, while the user reads the cell's output, so
    neither ``%load_ext`` nor the first job or panel waits for all of it. An import the kernel
    thread starts meanwhile waits for this one (Python's per-module import locks); the package
    has no import cycles."""
    for module in modules:
        with contextlib.suppress(Exception):  # the first use imports it again, and says why not
            importlib.import_module(module)


def unload_ipython_extension(shell: Any) -> None:
    """``%unload_ext ltx_jupyter``: stop following jobs locally and stop the worker cleanly.

    Nothing is cancelled remotely: running requests go on, and their ids stay in the history
    for ``%ltx resume``.
    """
    magics = _loaded.pop(id(shell), None)
    if magics is None:
        return
    magics.close()
    # By name: a printer registered by name moves to the type's own entry once it is used.
    shell.display_formatter.mimebundle_formatter.pop("ltx_jupyter._jobs.Job", None)
    shell.display_formatter.mimebundle_formatter.pop("ltx_jupyter._sweeps.Sweep", None)
    if magics in shell.configurables:
        shell.configurables.remove(magics)
