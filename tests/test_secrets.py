"""The API key never leaks: with the key set to a canary, notebooks, the panel, successful and
failed jobs and every error path leave it in no output, widget state, saved notebook, history
file, log record, repr, exception or traceback (``%xmode Verbose`` tracebacks included, which
print the local variables of every frame). The canary is looked for as it is, URL-encoded and
base64-encoded (at any offset in a longer encoded text, as in a ``Basic`` auth header)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import nbformat
import pytest
from IPython.core import ultratb
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from nbclient import NotebookClient

from ltx_jupyter import JobStatus, QueueClient, RetryPolicy
from ltx_jupyter._schema import TEXT_TO_VIDEO
from ltx_jupyter.server import LocalServer

from .faultproxy import FaultProxy
from .shells import eventually, magics_of

CANARY = "fal-canary-5e1f0c2b9a7d4e38"
KEY_ID, KEY_SECRET = "canary-id-7b3e", "canary-secret-41d9"
NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def _base64_forms(secret: bytes) -> set[str]:
    """The characters base64 writes for ``secret`` wherever it sits in the encoded bytes: at
    each of the three offsets, the characters that depend on the secret's bits alone."""
    forms = set()
    for offset in range(3):
        first = -(-offset * 8 // 6)  # the first character with no bit of the bytes before
        last = (offset + len(secret)) * 8 // 6  # the last one with no bit of those after
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            forms.add(encode(b"\0" * offset + secret).decode()[first:last])
    return forms


def secret_forms(secret: str) -> frozenset[str]:
    """``secret`` as it is, URL-encoded and base64-encoded."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret)}
    return frozenset(forms | _base64_forms(secret.encode()))


#: Every form of the canaries (the key, and the secret of an id:secret pair, whole too).
SECRETS = secret_forms(CANARY) | secret_forms(KEY_SECRET) | secret_forms(f"{KEY_ID}:{KEY_SECRET}")


def assert_clean(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"the key leaked into {where}"


def traceback_texts(error: BaseException) -> str:
    """The exception as every viewer shows it: str, repr, plain and verbose tracebacks."""
    plain = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    verbose = ultratb.VerboseTB(theme_name="nocolor").text(type(error), error, error.__traceback__)
    return "\n".join([str(error), repr(error), plain, verbose])


def walk(obj: Any, depth: int = 0, seen: set[int] | None = None) -> Iterator[str]:
    """Every string reachable from ``obj`` through attributes and containers (bounded).

    ``_Secret`` keeps the key in ``__slots__``, out of reach: finding the key anywhere else
    means some object copied it.
    """
    seen = set() if seen is None else seen
    if id(obj) in seen or depth > 6:
        return
    seen.add(id(obj))
    if isinstance(obj, str):
        yield obj
        return
    if isinstance(obj, (bytes, bytearray)):
        yield bytes(obj).decode("latin-1")
        return
    if isinstance(obj, (int, float, bool, type(None))):
        return
    if callable(obj) and not hasattr(obj, "__dict__"):
        return
    if type(obj).__name__ in ("_Secret", "Lock", "RLock", "Thread", "AbstractEventLoop"):
        return
    yield repr(obj)
    if isinstance(obj, dict):
        for key, value in list(obj.items()):
            yield from walk(key, depth + 1, seen)
            yield from walk(value, depth + 1, seen)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for item in list(obj):
            yield from walk(item, depth + 1, seen)
    elif hasattr(obj, "__dict__") and type(obj).__module__.startswith("ltx_jupyter"):
        for value in list(vars(obj).values()):
            yield from walk(value, depth + 1, seen)


def assert_object_clean(obj: Any, where: str) -> None:
    for text in walk(obj):
        assert_clean(text, where)


def widget_states(widget: Any) -> str:
    """The state of ``widget`` and every widget under it, as saved in a notebook."""
    import ipywidgets

    states, stack, seen = [], [widget], set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        states.append(json.dumps(current.get_state(), default=str))
        for name in current.keys:
            value = getattr(current, name, None)
            values = value if isinstance(value, (list, tuple)) else [value]
            stack += [v for v in values if isinstance(v, ipywidgets.Widget)]
    return "\n".join(states)


@pytest.fixture
def canary_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FAL_KEY", CANARY)
    monkeypatch.setenv("LTX_HISTORY_FILE", str(tmp_path / "history.jsonl"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "history.jsonl"


@pytest.fixture
def shell_for(canary_env: Path, ltx_shell: Callable[..., Any]) -> Callable[..., Any]:
    """Shells made with the canary key in the environment."""
    return ltx_shell


def outputs_text(captured: Any) -> str:
    parts = [captured.stdout, captured.stderr]
    for output in captured.outputs:
        parts.append(json.dumps(output.data, default=str))
        parts.append(json.dumps(output.metadata, default=str))
    return "\n".join(parts)


# -- the magic: successful and failed jobs and every error path ---------------------------------


@pytest.mark.timeout(180)
def test_the_key_leaks_nowhere_across_jobs_and_error_paths(
    shell_for: Callable[..., InteractiveShell],
    server_factory: Callable[..., LocalServer],
    canary_env: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    keyed = server_factory(key=CANARY, step_seconds=0.02)
    shell = shell_for(keyed.url)
    magics = magics_of(shell)
    seen_texts: list[tuple[str, str]] = []
    errors: list[BaseException] = []

    def cell(line: str, body: str = "a canary in a coal mine") -> None:
        with capture_output() as captured:
            try:
                shell.run_cell_magic("ltx", line, body)
            except Exception as error:  # every error path is what we look at
                errors.append(error)
        seen_texts.append((f"the output of %%ltx {line}", outputs_text(captured)))

    # Success, blocking and not: the video output, the live view and its widget state.
    cell("--wait --seed 1 --steps 2")
    cell("--no-wait --seed 2 --steps 3 -o live")
    live = shell.user_ns["live"]
    live.wait(30)
    eventually(lambda: "<video" in magics.views[live.local_id].video_html.value)
    # Failures: the server refuses the input (422), a cancel, a client deadline.
    cell("--wait --steps 2 --param width=63")  # refused by the client: not a field
    shell.run_line_magic("config", "LtxMagics.strict_fields = False")
    cell("--wait --steps 2 --param width=63")  # let through: the server's engine refuses it
    shell.run_line_magic("config", "LtxMagics.strict_fields = True")
    cell("--no-wait --steps 50 -o doomed")
    shell.user_ns["doomed"].cancel()
    eventually(lambda: shell.user_ns["doomed"].done)
    cell("--wait --steps 50 --timeout 0.3")
    # Usage errors.
    cell("--steps 0")
    cell("--image /no/such/file.png")
    # Subcommands and configuration.
    for line in ("jobs", f"show {live.request_id}", "cancel all", "resume nothing-like-this"):
        with capture_output() as captured:
            try:
                shell.run_line_magic("ltx", line)
            except UsageError as error:
                errors.append(error)
        seen_texts.append((f"%ltx {line}", outputs_text(captured)))
    with capture_output() as captured:
        shell.run_line_magic("config", "LtxMagics")
    seen_texts.append(("%config LtxMagics", outputs_text(captured)))

    # A server that refuses the key (401), and one answering garbage.
    other = server_factory(key="another-key")
    shell.run_line_magic("config", f"LtxMagics.queue_url = {other.url!r}")
    cell("--wait --steps 2")
    with FaultProxy(keyed.url) as proxy:
        proxy.add("garbage", path=r"/status", status=200, body=b"<html>" + b"x" * 100, times=99)
        shell.run_line_magic("config", f"LtxMagics.queue_url = {proxy.url!r}")
        cell("--wait --steps 2")

    statuses = {str(job.status) for job in magics.session.jobs}
    assert {"completed", "failed", "cancelled"} <= statuses, statuses
    kinds = {type(e).__name__ for e in errors}
    assert {"ValidationError", "RequestTimeoutError", "AuthenticationError", "UsageError"} <= kinds
    assert "ProtocolError" in kinds or any("not JSON" in str(e) for e in errors)

    for where, text in seen_texts:
        assert_clean(text, where)
    for error in errors + [job.error for job in magics.session.jobs if job.error is not None]:
        assert_clean(traceback_texts(error), f"the {type(error).__name__} traceback")
    for job in magics.session.jobs:
        assert_clean(repr(job), "a Job repr")
        assert_clean(json.dumps(shell.display_formatter.format(job), default=str), "a Job output")
        assert_object_clean(job, "a Job's attributes")
    for view in magics.views.values():
        assert_clean(widget_states(view), "a job view's widget state")
        assert_clean(repr(view), "a job view repr")
    assert_object_clean(magics.session, "the session")
    assert_clean(repr(magics.session.client(keyed.url)), "the client repr")
    assert_clean(canary_env.read_text(), "the history file")
    assert_clean(caplog.text, "the log")
    assert any(r.name.startswith(("httpx", "ltx_jupyter")) for r in caplog.records)


def test_key_id_and_secret_leak_nowhere(
    server_factory: Callable[..., LocalServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FAL_KEY", raising=False)
    monkeypatch.setenv("FAL_KEY_ID", KEY_ID)
    monkeypatch.setenv("FAL_KEY_SECRET", KEY_SECRET)
    server = server_factory(key=f"{KEY_ID}:{KEY_SECRET}")
    wrong = server_factory(key="x")

    async def main() -> list[BaseException]:
        caught: list[BaseException] = []
        async with QueueClient(queue_url=server.url) as client:
            assert_clean(repr(client), "the client repr")
            output = await client.run(TEXT_TO_VIDEO, {"prompt": "ok", "num_inference_steps": 2})
            assert output["video"]["url"]
        for url in (wrong.url, "http://127.0.0.1:9"):
            policy = RetryPolicy(max_attempts=2, base=0.01, cap=0.01)
            async with QueueClient(queue_url=url, retry=policy) as client:
                try:
                    await client.run(TEXT_TO_VIDEO, {"prompt": "no", "num_inference_steps": 2})
                except Exception as error:
                    caught.append(error)
        return caught

    caught = asyncio.run(main())
    assert [type(e).__name__ for e in caught] == ["AuthenticationError", "ConnectError"]
    for error in caught:
        assert_clean(traceback_texts(error), f"the {type(error).__name__} traceback")


def test_a_verbose_traceback_of_a_failed_job_shows_no_key(
    shell_for: Callable[..., InteractiveShell],
) -> None:
    """``%xmode Verbose`` prints each frame's locals: the request headers must not be one."""
    shell = shell_for("http://127.0.0.1:9")
    shell.run_line_magic("xmode", "Verbose")
    job = magics_of(shell).session.start(
        TEXT_TO_VIDEO, {"prompt": "unreachable"}, queue_url="http://127.0.0.1:9"
    )
    with pytest.raises(Exception) as caught:
        job.wait(60)
    assert job.status == JobStatus.FAILED
    assert_clean(traceback_texts(caught.value), "a verbose traceback")
    with capture_output() as shown:
        shell.showtraceback((caught.type, caught.value, caught.tb))
    assert_clean(shown.stdout + shown.stderr, "the shell's traceback")


# -- the panel ---------------------------------------------------------------------------------


def test_the_panel_state_holds_no_key(
    shell_for: Callable[..., InteractiveShell], local_server: LocalServer
) -> None:
    shell = shell_for(local_server.url)
    panel = shell.run_line_magic("ltx", "panel")
    try:
        panel.set(prompt="a lantern on a pier", seed=3)
        job = panel.generate()
        assert job is not None
        job.wait(30)
        eventually(lambda: "<video" in widget_states(panel))
        assert_clean(widget_states(panel), "the panel's widget state")
        assert_clean(repr(panel), "the panel repr")
        bundle = panel._repr_mimebundle_() or {}
        assert_clean(json.dumps(bundle, default=str), "the panel output")
        assert_object_clean(panel.runs, "the panel's runs")
    finally:
        panel.close()


# -- notebooks -----------------------------------------------------------------------------------


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", ["quickstart", "panel"])
def test_executed_notebooks_hold_no_key(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = NOTEBOOKS / f"{name}.ipynb"
    monkeypatch.setenv("FAL_KEY", CANARY)
    history = tmp_path / "history.jsonl"
    monkeypatch.setenv("LTX_HISTORY_FILE", str(history))
    monkeypatch.delenv("LTX_QUEUE_URL", raising=False)
    notebook = nbformat.read(source, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=180,
        store_widget_state=True,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    executed = tmp_path / f"{name}.executed.ipynb"
    nbformat.write(notebook, executed)
    assert not [o for c in notebook.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert_clean(executed.read_text(), f"the executed {name} notebook")
    assert_clean(history.read_text(), "the history file")


def test_the_canary_check_itself_finds_a_leak() -> None:
    """The scanners above would see the key if it were there."""
    with pytest.raises(AssertionError):
        assert_clean(f"Authorization: Key {CANARY}", "a test string")
    for prefix in ("", "u", "us", "user:"):
        basic = base64.b64encode(f"{prefix}{KEY_ID}:{KEY_SECRET}".encode()).decode()
        with pytest.raises(AssertionError):
            assert_clean(f"Authorization: Basic {basic}", "a base64 header")
        with pytest.raises(AssertionError):
            assert_clean(base64.urlsafe_b64encode(f"{prefix}{CANARY}".encode()).decode(), "b64")
    with pytest.raises(AssertionError):
        assert_clean(f"https://x.example/?key={quote(f'{KEY_ID}:{KEY_SECRET}', safe='')}", "url")
    assert_clean(base64.b64encode(b"an innocent text").decode() + quote("a b:c"), "clean text")

    class Holder:
        pass

    holder = Holder()
    holder.__dict__["headers"] = {"Authorization": f"Key {CANARY}"}
    with pytest.raises(AssertionError):
        assert_clean(repr(holder.__dict__), "a test object")
    try:
        headers = {"Authorization": f"Key {CANARY}"}
        raise RuntimeError(f"boom with {len(headers)} header")  # verbose mode shows `headers`
    except RuntimeError as error:
        with pytest.raises(AssertionError):
            assert_clean(traceback_texts(error), "a test traceback")
