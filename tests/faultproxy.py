"""A loopback TCP proxy that injects network faults between a client and the local server.

Rules match a request by method and path (a regex) and act on it: answer an HTTP status
(429 with ``Retry-After``, 500, 502, 503, 504...), reset the connection before the request
reaches the server, stall before forwarding, cut a status stream after N events, cut a request
once ``size`` of its bytes reached the server (``cut_request``: an upload dropped midway),
forward a request at ``size`` bytes a second (``throttle``: a slow uplink), or answer a
malformed body: ``garbage`` (any bytes with any status), ``truncated`` (a Content-Length the
body never reaches), ``invalid_utf8``, ``huge`` (``size`` bytes) or ``wrong_type`` (a status
stream answered as ``application/json``). Each rule fires ``times`` times. ``injected``
counts what was done, by kind (a rule's ``label``, else its status or action).

It also serves as a client's HTTP proxy (``HTTP_PROXY``): a request that names its whole URL
(absolute form, as sent to a proxy) is forwarded to the upstream in origin form and counted in
``proxied``. ``connections`` counts the client connections open now, ``peak_connections`` the
most open at once and ``accepted`` all of them.

A :class:`Mix` is a probabilistic plan: each matching request fails with probability
``rate``, the fault drawn by weight from its choices, from the proxy's seeded RNG.
:func:`install_mixed_plan` is the plan of the fault test and of the fault benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import re
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

Action = Literal[
    "status",
    "reset",
    "stall",
    "cut_stream",
    "cut_request",
    "throttle",
    "garbage",
    "truncated",
    "invalid_utf8",
    "huge",
    "wrong_type",
]
#: Actions answered by the proxy itself, without forwarding the request.
_CANNED = frozenset({"status", "garbage", "truncated", "invalid_utf8", "huge", "wrong_type"})
_REQUEST_LINE = re.compile(rb"^(GET|POST|PUT|DELETE|PATCH|HEAD|OPTIONS) (\S+) HTTP/1\.[01]\r\n")


@dataclass
class Rule:
    method: str | None
    path: str
    action: Action
    times: int = 1
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"detail": "injected fault"}'
    seconds: float = 0.0
    events: int = 1
    size: int = 0
    content_type: str = "application/json"
    label: str | None = None
    fired: int = 0

    @property
    def kind(self) -> str:
        """What :attr:`FaultProxy.injected` counts this rule's faults as."""
        if self.label:
            return self.label
        return str(self.status) if self.action == "status" else self.action

    def matches(self, method: str, path: str) -> bool:
        if self.fired >= self.times:
            return False
        if self.method is not None and self.method != method:
            return False
        return re.search(self.path, path) is not None


@dataclass
class Mix:
    """A probabilistic fault plan for the requests matching ``method`` and ``path``."""

    method: str | None
    path: str
    rate: float
    choices: list[tuple[float, Rule]]

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        return re.search(self.path, path) is not None

    def draw(self, rng: random.Random) -> Rule | None:
        if rng.random() >= self.rate:
            return None
        weights = [weight for weight, _ in self.choices]
        return rng.choices([rule for _, rule in self.choices], weights=weights)[0]


def fault(action: Action, **options: object) -> Rule:
    """A :class:`Rule` for a :class:`Mix` choice (method and path come from the mix)."""
    return Rule(method=None, path="", action=action, times=1 << 62, **options)  # type: ignore[arg-type]


_NGINX = (
    "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{code} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def _nginx(code: int, reason: str, where: str) -> Rule:
    body = _NGINX.format(code=code, reason=reason).encode()
    label = f"{where}: {code} (nginx page)"
    return fault("status", status=code, body=body, content_type="text/html", label=label)


def install_mixed_plan(proxy: FaultProxy, rate: float = 0.2) -> None:
    """The mixed plan: about ``rate`` of the requests of every kind fail, and every kind of
    fault below happens at least once (on the first requests of its call). Kinds are labelled
    by call (``submit: 429``, ``stream: reset``...).

    Submits only get the refusals an ingress sends before queueing (429 with Retry-After,
    503): a drop after a submit was sent is ambiguous, and no client may resend it (that
    case has its own test in test_client.py). Status streams, polls and result reads get
    everything: 429, 500, 502, 503, 504, resets, stalls of 2.5 s (past a 2 s client timeout),
    cut streams, truncated bodies and a stream answered with the wrong content type.
    """
    proxy.mix(
        rate,
        [
            (3, fault("status", status=429, headers={"Retry-After": "0"}, label="submit: 429")),
            (1, fault("status", status=429, headers={"Retry-After": "1"}, label="submit: 429")),
            (2, fault("status", status=503, label="submit: 503")),
            (1, _nginx(503, "Service Temporarily Unavailable", "submit")),
        ],
        path=r"^/fal-ai/ltx-video$",
        method="POST",
        each_first=True,
    )
    proxy.mix(
        rate,
        [
            (2, fault("cut_stream", events=1, label="stream: cut")),
            (2, fault("cut_stream", events=2, label="stream: cut")),
            (1, fault("cut_stream", events=3, label="stream: cut")),
            (1, fault("reset", label="stream: reset")),
            (1, fault("status", status=503, label="stream: 503")),
            (1, _nginx(502, "Bad Gateway", "stream")),
            (1, fault("status", status=429, headers={"Retry-After": "0"}, label="stream: 429")),
            (1, fault("wrong_type", status=200, label="stream: wrong content type")),
            (1, fault("stall", seconds=2.5, label="stream: stall")),
        ],
        path=r"/status/stream",
        each_first=True,
    )

    def read_faults(where: str) -> list[tuple[float, Rule]]:
        return [
            (2, fault("reset", label=f"{where}: reset")),
            (1, fault("status", status=500, label=f"{where}: 500")),
            (1, _nginx(502, "Bad Gateway", where)),
            (1, fault("status", status=503, label=f"{where}: 503")),
            (1, _nginx(504, "Gateway Time-out", where)),
            (1, fault("status", status=429, headers={"Retry-After": "0"}, label=f"{where}: 429")),
            (1, fault("truncated", status=200, size=200, label=f"{where}: truncated body")),
            (1, fault("stall", seconds=2.5, label=f"{where}: stall")),
        ]

    proxy.mix(
        rate,
        read_faults("status"),
        path=r"/requests/[^/]+/status(\?|$)",
        method="GET",
        each_first=True,
    )
    # A 500 on a result read is a failed run in fal's protocol, so result reads get the others.
    result_faults = [(w, r) for w, r in read_faults("result") if r.status != 500]
    proxy.mix(rate, result_faults, path=r"/requests/[^/?]+(\?|$)", method="GET", each_first=True)


_REASONS = {
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    408: "Request Timeout",
    200: "OK",
}


class FaultProxy:
    """Forwards ``127.0.0.1:<port>`` to ``upstream`` (a base URL), applying :class:`Rule`s."""

    def __init__(self, upstream_url: str, *, seed: int = 0) -> None:
        host_port = upstream_url.split("://", 1)[1].rstrip("/")
        host, port = host_port.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.rules: list[Rule] = []
        self.mixes: list[Mix] = []
        self.rng = random.Random(seed)
        self.injected: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()
        self.proxied: Counter[str] = Counter()
        self.connections = 0
        self.peak_connections = 0
        self.accepted = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(
        self, action: Action, path: str = "", method: str | None = None, **options: object
    ) -> Rule:
        rule = Rule(method=method, path=path, action=action, **options)  # type: ignore[arg-type]
        with self._lock:
            self.rules.append(rule)
        return rule

    def mix(
        self,
        rate: float,
        choices: list[tuple[float, Rule]],
        path: str = "",
        method: str | None = None,
        *,
        each_first: bool = False,
    ) -> Mix:
        """Fail the matching requests with probability ``rate``, drawing faults by weight.

        ``each_first``: the first matching requests get each choice once, in order, before
        any is drawn, so every kind of fault in the plan happens at least once.
        """
        plan = Mix(method=method, path=path, rate=rate, choices=choices)
        with self._lock:
            if each_first:
                self.rules += [
                    dataclasses.replace(rule, method=method, path=path, times=1, fired=0)
                    for _, rule in choices
                ]
            self.mixes.append(plan)
        return plan

    def plan_kinds(self) -> set[str]:
        """Every kind of fault the installed rules and mixes can inject."""
        with self._lock:
            kinds = {rule.kind for rule in self.rules}
            return kinds | {rule.kind for plan in self.mixes for _, rule in plan.choices}

    def _take(self, method: str, path: str) -> Rule | None:
        with self._lock:
            self.requests[f"{method} {path.split('?')[0]}"] += 1
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.fired += 1
                    self.injected[rule.kind] += 1
                    return rule
            for plan in self.mixes:
                if plan.matches(method, path):
                    rule = plan.draw(self.rng)
                    if rule is not None:
                        rule.fired += 1
                        self.injected[rule.kind] += 1
                    return rule
        return None

    def start(self) -> FaultProxy:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", 0)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            self._server.close()
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=run, name="fault-proxy", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._lock:
            self.accepted += 1
            self.connections += 1
            self.peak_connections = max(self.peak_connections, self.connections)
        try:
            await self._relay(reader, writer)
        finally:
            with self._lock:
                self.connections -= 1

    def _origin_form(self, data: bytes, match: re.Match[bytes]) -> bytes:
        """``data`` with an absolute-form request target (sent to a proxy) in origin form."""
        target = match.group(2)
        if not target.lower().startswith((b"http://", b"https://")):
            return data
        path = b"/" + target.split(b"/", 3)[3] if target.count(b"/") >= 3 else b"/"
        with self._lock:
            self.proxied[f"{match.group(1).decode()} {path.split(b'?')[0].decode()}"] += 1
        return data[: match.start(2)] + path + data[match.end(2) :]

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            _reset(writer)
            return
        cut_after: list[int | None] = [None]
        request_budget: list[int | None] = [None]
        rate: list[int | None] = [None]

        async def client_to_server() -> None:
            while data := await reader.read(65536):
                match = _REQUEST_LINE.match(data)
                if match:
                    data = self._origin_form(data, match)
                    match = _REQUEST_LINE.match(data)
                    assert match is not None
                    rule = self._take(match.group(1).decode(), match.group(2).decode())
                    if rule is not None:
                        if rule.action == "reset":
                            _reset(writer)
                            up_writer.close()
                            return
                        if rule.action in _CANNED:
                            await _answer(writer, rule)
                            up_writer.close()
                            return
                        if rule.action == "stall":
                            await asyncio.sleep(rule.seconds)
                        if rule.action == "cut_stream":
                            cut_after[0] = rule.events
                        if rule.action == "cut_request":
                            request_budget[0] = rule.size
                        if rule.action == "throttle":
                            rate[0] = rule.size
                if request_budget[0] is not None:
                    if len(data) >= request_budget[0]:
                        up_writer.write(data[: request_budget[0]])
                        await up_writer.drain()
                        _reset(writer)
                        up_writer.close()
                        return
                    request_budget[0] -= len(data)
                if rate[0]:
                    await asyncio.sleep(len(data) / rate[0])
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def server_to_client() -> None:
            seen = 0
            while data := await up_reader.read(65536):
                writer.write(data)
                await writer.drain()
                if cut_after[0] is not None:
                    seen += data.count(b"data:")
                    if seen >= cut_after[0]:
                        _reset(writer)
                        up_writer.close()
                        return
            writer.close()

        tasks = [
            asyncio.ensure_future(client_to_server()),
            asyncio.ensure_future(server_to_client()),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            await asyncio.wait(tasks, timeout=0.5)
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass  # the peer went away, or the proxy is stopping
        finally:
            for task in tasks:
                task.cancel()
            for w in (writer, up_writer):
                w.close()


async def _answer(writer: asyncio.StreamWriter, rule: Rule) -> None:
    """Write the proxy's own answer for ``rule``, then close the connection."""
    status, body, length = rule.status, rule.body, None
    content_type = rule.content_type
    if rule.action == "truncated":
        length = len(body) + max(rule.size, 1)  # promises bytes that never come
    elif rule.action == "invalid_utf8":
        body = b'{"status": "IN_PROGRESS", "logs": [{"message": "\xff\xfe\xc3("}]}'
    elif rule.action == "wrong_type":
        body = body if rule.body != Rule.body else b'{"status": "IN_PROGRESS", "logs": []}'
    head = f"HTTP/1.1 {status} {_REASONS.get(status, 'OK' if status < 400 else 'Error')}\r\n"
    head += f"Content-Type: {content_type}\r\n"
    for name, value in rule.headers.items():
        head += f"{name}: {value}\r\n"
    if rule.action == "huge":
        total = max(rule.size, len(body))
        head += f"Content-Length: {total}\r\nConnection: close\r\n\r\n"
        writer.write(head.encode())
        chunk = (body or b"x") * max(1, 65536 // max(len(body), 1))
        sent = 0
        while sent < total:
            piece = chunk[: total - sent]
            writer.write(piece)
            sent += len(piece)
            await writer.drain()
    else:
        head += f"Content-Length: {len(body) if length is None else length}\r\n"
        head += "Connection: close\r\n\r\n"
        writer.write(head.encode() + body)
        await writer.drain()
    writer.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST, as a dropped connection looks to the client."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
