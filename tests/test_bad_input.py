"""Property-based tests (Hypothesis) over what users type: magic lines, option values, prompts
(any unicode, huge text, control characters) and panel values.

The only exceptions are our usage and validation errors, each naming the option or field; an
input that is refused sends nothing; an input that is accepted can always be sent (valid UTF-8
JSON: no lone surrogate, no NaN).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from ltx_jupyter import InputError, QueueClient
from ltx_jupyter._parsing import build_request, split_line
from ltx_jupyter._schema import IMAGE_TO_VIDEO, TEXT_TO_VIDEO, validate_input
from ltx_jupyter.server import LocalServer, ServerConfig

from .conftest import FAST_SERVER
from .shells import magics_of

SETTINGS = settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: Each option, with the field its errors may name instead.
OPTIONS = {
    "--negative": "negative_prompt",
    "--seed": "seed",
    "--steps": "num_inference_steps",
    "--guidance": "guidance_scale",
    "--endpoint": "endpoint",
    "--image": "image_url",
    "--param": "--param",
    "--timeout": "timeout",
    "--priority": "priority",
    "--webhook": "webhook",
    "-o": "out",
    "--save": "save",
}
FLAGS = ["--embed", "--no-wait", "--", "-h"]

# Any text: every unicode category, lone surrogates and control characters included.
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
option_value = st.one_of(
    any_text,
    st.integers().map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "-inf", "1e400", "0", "-1", "51", "10.5", "'", '"', "{}", "a=b"]),
)


@st.composite
def magic_lines(draw: st.DrawFn) -> str:
    """A magic line: options with values, flags and stray words, some quoted."""
    words = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.integers(0, 3))
        if kind == 0:
            option = draw(st.sampled_from(sorted(OPTIONS)))
            words += [option, _quote(draw(option_value), draw(st.booleans()))]
        elif kind == 1:
            words.append(draw(st.sampled_from(FLAGS)))
        elif kind == 2:
            words.append(_quote(draw(any_text), draw(st.booleans())))
        else:
            words.append(draw(st.sampled_from(sorted(OPTIONS))))
    return " ".join(words)


def _quote(text: str, quote: bool) -> str:
    if not quote:
        return text
    return "'" + text.replace("'", "'\"'\"'") + "'"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    config = ServerConfig(
        port=0, data_dir=tmp_path_factory.mktemp("bad-input"), concurrency=4, **FAST_SERVER
    )
    with LocalServer(config) as local:
        yield local


@pytest.fixture(scope="module")
def shell(
    server: LocalServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InteractiveShell]:
    """One shell for the module, pointed at the server, never blocking on a job."""
    folder = tmp_path_factory.mktemp("shell")
    saved = {k: os.environ.get(k) for k in ("LTX_QUEUE_URL", "LTX_HISTORY_FILE", "FAL_KEY")}
    os.environ.update(LTX_QUEUE_URL=server.url, LTX_HISTORY_FILE=str(folder / "history.jsonl"))
    os.environ.pop("FAL_KEY", None)
    cwd = os.getcwd()
    os.chdir(folder)
    InteractiveShell.clear_instance()
    ip = InteractiveShell.instance()
    ip.history_manager.enabled = False
    ip.config.LtxMagics.wait = False
    ip.run_line_magic("load_ext", "ltx_jupyter")
    try:
        yield ip
    finally:
        ip.run_line_magic("unload_ext", "ltx_jupyter")
        InteractiveShell.clear_instance()
        os.chdir(cwd)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def submits(server: LocalServer) -> int:
    return int(httpx.get(f"{server.url}/_local/stats").json()["by_kind"]["submit"])


def assert_sendable(arguments: dict[str, Any]) -> None:
    """What httpx does with ``json=``: strict JSON, encoded as UTF-8."""
    json.dumps(arguments, ensure_ascii=False, allow_nan=False).encode("utf-8")


def assert_one_line_naming(error: UsageError, *names: str) -> None:
    text = str(error)
    assert text.strip() and "\n" not in text.strip(), text
    assert any(name in text for name in names), (names, text)


# -- magic lines ---------------------------------------------------------------------------------


@SETTINGS
@given(line=magic_lines(), cell=st.one_of(any_text, st.just("a calm sea at dawn")))
def test_any_magic_line_runs_or_is_a_one_line_usage_error_sending_nothing(
    shell: InteractiveShell, line: str, cell: str
) -> None:
    assume("--wait" not in line)
    session = magics_of(shell).session
    jobs_before = len(session.jobs)
    try:
        shell.run_cell_magic("ltx", line, cell)
    except UsageError as error:
        text = str(error)
        assert text.strip() and "\n" not in text.strip(), text
        assert len(session.jobs) == jobs_before, "a refused line started a job"
        return
    # Accepted: exactly one job, and its input can be sent.
    assert len(session.jobs) == jobs_before + 1
    assert_sendable(session.jobs[-1].input)


@SETTINGS
@given(option=st.sampled_from(sorted(OPTIONS)), value=option_value)
def test_a_bad_option_value_is_a_usage_error_naming_the_option(
    shell: InteractiveShell, option: str, value: str
) -> None:
    magics = magics_of(shell)
    try:
        words = split_line(f"{option} {_quote(value, True)}")
        args = magics._parse(words)
        request = build_request(
            args, "a fox", default_endpoint=TEXT_TO_VIDEO, defaults={"num_inference_steps": None}
        )
    except UsageError as error:
        assert_one_line_naming(error, option, OPTIONS[option])
        return
    assert_sendable(request.arguments)


REFUSED_LINES = [
    "--steps 0",
    "--guidance 11",
    "--seed abc",
    "--image /no/such/file.png",
    "--endpoint fal-ai//x",
    "--duration 8",
    "--param num_inference_steps=500",
    "--timeout -1",
    "-o 1bad",
    "--priority urgent",
    "--webhook ftp://example.com/hook",
    "--negative",
    "stray words",
]


def test_refused_lines_send_nothing_and_accepted_ones_one_submit_each(
    server_factory: Any, ltx_shell: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counted on a server of its own: each refused line is a UsageError and sends nothing;
    each accepted line sends exactly one submit."""
    fresh = server_factory()
    monkeypatch.setenv("LTX_HISTORY_FILE", str(tmp_path / "history.jsonl"))
    monkeypatch.delenv("FAL_KEY", raising=False)
    shell = ltx_shell(fresh.url, wait=False)
    for line in REFUSED_LINES:
        with pytest.raises(UsageError):
            shell.run_cell_magic("ltx", line, "a calm sea at dawn")
    assert submits(fresh) == 0
    for line in ("--steps 2", "--seed 3 --steps 2"):
        shell.run_cell_magic("ltx", line, "a calm sea at dawn")
    session = magics_of(shell).session
    assert len(session.jobs) == 2
    for job in session.jobs:
        job.wait(30)
    assert submits(fresh) == 2


# -- prompts -------------------------------------------------------------------------------------


prompts = st.one_of(
    any_text,
    st.text(max_size=2000),
    st.text(st.characters(max_codepoint=0x1F), max_size=50),
    st.integers(10_000, 200_000).map(lambda n: "ä<b>{x}</b> " * (n // 12)),
    st.sampled_from(["", " ", "\n\t", "\x00", "\ud800", "a\udfffb", "\u202e\u200b", "{}", "%%"]),
)


@SETTINGS
@given(prompt=prompts)
def test_any_prompt_is_accepted_literally_or_refused_naming_the_prompt(
    shell: InteractiveShell, prompt: str
) -> None:
    args = magics_of(shell)._parse([])
    try:
        request = build_request(args, prompt, default_endpoint=TEXT_TO_VIDEO, defaults={})
    except UsageError as error:
        assert_one_line_naming(error, "prompt")
        return
    assert request.arguments["prompt"] == prompt.strip()
    assert_sendable(request.arguments)


@SETTINGS
@given(
    prompt=prompts,
    extra=st.dictionaries(
        st.one_of(st.text(max_size=10), st.integers()),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(),
            any_text,
            st.lists(st.floats(), max_size=3),
            st.builds(object),
        ),
        max_size=3,
    ),
    endpoint=st.sampled_from([TEXT_TO_VIDEO, IMAGE_TO_VIDEO, "fal-ai/ltxv-13b-098-distilled"]),
)
def test_the_client_refuses_unsendable_input_before_any_request(
    prompt: str, extra: dict[Any, Any], endpoint: str
) -> None:
    """validate_input is the client's gate: what it accepts is sendable, what it refuses
    raises InputError naming a field, and no other exception escapes."""
    data = {**extra, "prompt": prompt}
    try:
        validated = validate_input(endpoint, data)
    except InputError as error:
        assert error.fields and all(isinstance(f, str) and f for f in error.fields)
        assert all(f in str(error) for f in error.fields)
        return
    assert_sendable(validated.arguments)


def test_the_client_sends_nothing_for_invalid_input() -> None:
    """Through QueueClient.submit, on a transport that fails the test if it is called."""
    import asyncio

    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"sent {request.method} {request.url}")

    async def main() -> None:
        transport = httpx.MockTransport(refuse)
        async with QueueClient(queue_url="http://127.0.0.1:9", transport=transport) as client:
            for data in (
                {"prompt": "a\ud800"},
                {"prompt": "x", "extra": float("nan")},
                {"prompt": "x", 3: "y"},
                {"prompt": "x", "extra": {"deep": [float("inf")]}},
                {"prompt": "x", "extra": object()},
                {"prompt": ""},
                {"prompt": "x", "num_inference_steps": 0},
            ):
                with pytest.raises(InputError):
                    await client.submit(TEXT_TO_VIDEO, data)

    asyncio.run(main())


@SETTINGS
@given(name=st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True), raw=any_text)
def test_param_values_are_refused_or_sendable(shell: InteractiveShell, name: str, raw: str) -> None:
    assume(name not in ("prompt",))
    magics = magics_of(shell)
    try:
        args = magics._parse(["--param", f"{name}={raw}"])
        request = build_request(args, "x", default_endpoint=TEXT_TO_VIDEO, defaults={})
    except UsageError as error:
        assert_one_line_naming(error, "--param", name)
        return
    assert_sendable(request.arguments)


# -- the panel -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def panel(server: LocalServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from ltx_jupyter import JobSession
    from ltx_jupyter import _panel as panel_module
    from ltx_jupyter._history import HistoryStore

    history = HistoryStore(tmp_path_factory.mktemp("panel") / "history.jsonl")
    session = JobSession(history=history)
    made = panel_module.Panel(session=session, queue_url=server.url)
    try:
        yield made
    finally:
        made.close()


@SETTINGS
@given(
    prompt=prompts,
    negative=any_text,
    image=st.one_of(any_text, st.sampled_from(["javascript:alert(1)", "/etc/passwd", ""])),
    seed=st.one_of(st.none(), st.integers(-(2**70), 2**70)),
    endpoint=st.sampled_from([TEXT_TO_VIDEO, IMAGE_TO_VIDEO]),
)
def test_panel_values_are_refused_naming_the_field_or_sent(
    panel: Any, prompt: str, negative: str, image: str, seed: int | None, endpoint: str
) -> None:
    import traitlets

    jobs_before = len(panel.session.jobs)
    try:
        panel.endpoint_choice.value = endpoint
        panel.control("prompt").text.value = prompt
        panel.control("negative_prompt").text.value = negative
        if panel.form.has("image_url"):
            panel.control("image_url").url.value = image
        seed_control = panel.control("seed")
        if seed is None:
            seed_control.unset.value = True
        else:
            seed_control.unset.value = False
            seed_control.box.value = seed
    except traitlets.TraitError:
        return  # the widget itself refused the value (a browser could not send it)
    errors = panel.errors()
    for error in errors:
        assert error.field and error.msg
    job = panel.generate()
    if errors:
        assert job is None and len(panel.session.jobs) == jobs_before
    elif job is not None:
        assert_sendable(job.input)
    else:
        # The session refused it (InputError): the panel says why, nothing was started.
        assert panel.message.value and len(panel.session.jobs) == jobs_before
    for job in panel.session.jobs:
        job.cancel()


def test_huge_prompts_reach_the_server_or_get_its_413(server: LocalServer) -> None:
    """A prompt past the server's body limit is refused with 413, not a crash or a hang."""
    import asyncio

    from ltx_jupyter import HTTPError

    async def main() -> None:
        async with QueueClient(queue_url=server.url) as client:
            handle = await client.submit(TEXT_TO_VIDEO, {"prompt": "ü" * 500_000})
            assert handle.request_id
            with pytest.raises(HTTPError) as caught:
                await client.submit(TEXT_TO_VIDEO, {"prompt": "x" * (11 * 1024 * 1024)})
            assert caught.value.status_code == 413 and "limit" in str(caught.value)

    asyncio.run(main())
