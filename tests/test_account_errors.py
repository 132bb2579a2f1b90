"""fal's account errors, as fal words them, from a server over loopback: each is one line with
fal's reason and what to do, sent no more often than the retry rule allows, and never with the
key in it (a server echoing the key back included)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ltx_jupyter import JobStatus, QueueClient, RetryPolicy
from ltx_jupyter._errors import AccountError, AuthenticationError, RateLimitError
from ltx_jupyter._schema import TEXT_TO_VIDEO

from .hostile import HostileServer
from .shells import eventually, magics_of
from .test_secrets import CANARY, assert_clean, traceback_texts

ATTEMPTS = RetryPolicy().max_attempts
EXHAUSTED = (
    "User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard/billing."
)
ADMIN_LOCK = "User is locked. Reason: Admin lock. Please contact support@fal.ai"

#: (status, body, headers, error type, sends expected by the retry rule, words of the line)
CASES: dict[str, tuple[int, Any, dict[str, str], type, int, tuple[str, ...]]] = {
    "401 unknown key": (
        401,
        {"detail": "No user found for Key ID and Secret"},
        {},
        AuthenticationError,
        1,
        ("HTTP 401: No user found for Key ID and Secret.", "https://fal.ai/dashboard/keys"),
    ),
    "401 echoing the key": (
        401,
        {"detail": "Invalid credentials: {authorization}"},
        {},
        AuthenticationError,
        1,
        ("HTTP 401: Invalid credentials: Key <key>.", "https://fal.ai/dashboard/keys"),
    ),
    "403 exhausted balance": (
        403,
        {"detail": EXHAUSTED},
        {},
        AccountError,
        1,
        (f"HTTP 403: {EXHAUSTED}", "top up at https://fal.ai/dashboard/billing"),
    ),
    "403 admin lock": (
        403,
        {"detail": ADMIN_LOCK},
        {},
        AccountError,
        1,
        (f"HTTP 403: {ADMIN_LOCK}", "fal has locked the account: write to support@fal.ai"),
    ),
    "402 payment required": (
        402,
        {"detail": "Payment Required"},
        {},
        AccountError,
        1,
        ("HTTP 402: Payment Required.", "top up at https://fal.ai/dashboard/billing"),
    ),
    "429 come back soon": (
        429,
        {"detail": "Too many concurrent requests"},
        {"Retry-After": "0"},
        RateLimitError,
        ATTEMPTS,
        (
            f"HTTP 429: Too many concurrent requests (refused {ATTEMPTS} times).",
            "wait, then run again, or run fewer jobs at once",
        ),
    ),
    "429 come back in an hour": (
        429,
        {"detail": "Rate limit exceeded"},
        {"Retry-After": "3600"},
        RateLimitError,
        1,
        ("HTTP 429: Rate limit exceeded (refused).", "wait 60 min (fal's Retry-After), then"),
    ),
}


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The canary key in the environment and a private history."""
    monkeypatch.setenv("FAL_KEY", CANARY)
    monkeypatch.setenv("LTX_HISTORY_FILE", str(tmp_path / "history.jsonl"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "history.jsonl"


@pytest.fixture
def answering() -> Iterator[Callable[[str], HostileServer]]:
    started: list[HostileServer] = []

    def start(case: str) -> HostileServer:
        status, body, headers, *_ = CASES[case]
        server = HostileServer(submit_answer=(status, body, headers))
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.mark.parametrize("case", list(CASES))
def test_an_account_error_is_one_line_with_the_reason_and_what_to_do(
    case: str, keyed: Path, answering: Callable[[str], HostileServer]
) -> None:
    _status, _body, _headers, kind, sends, words = CASES[case]
    server = answering(case)

    async def main() -> BaseException:
        async with QueueClient(queue_url=server.url) as client:
            try:
                await client.run(TEXT_TO_VIDEO, {"prompt": "a paid request"})
            except Exception as error:
                return error
        raise AssertionError("the run did not fail")

    error = asyncio.run(main())
    assert type(error) is kind
    text = str(error)
    assert "\n" not in text
    for word in words:
        assert word in text, text
    assert server.submits == sends, "sent more often than the retry rule allows"
    assert server.requests[0].headers["authorization"] == f"Key {CANARY}"
    assert_clean(traceback_texts(error), f"the {case} error")


def test_a_locked_account_shows_in_the_job_view_and_in_no_file(
    keyed: Path, answering: Callable[[str], HostileServer], ltx_shell: Callable[..., Any]
) -> None:
    server = answering("403 exhausted balance")
    shell = ltx_shell(server.url)
    shell.run_cell_magic("ltx", "-o job --no-wait", "a paid request")
    job = shell.user_ns["job"]
    with pytest.raises(AccountError):
        job.wait(30)
    assert job.status == JobStatus.FAILED and job.request_id is None
    view = magics_of(shell).views[job.local_id]
    status = eventually(lambda: "failed" in view.status_html.value and view.status_html.value)
    assert "top up at https://fal.ai/dashboard/billing" in status
    assert server.submits == 1
    assert not keyed.exists() or CANARY not in keyed.read_text()
    assert_clean(status + repr(job), "the job view")
