"""``python -m bench.run``: every benchmark, printed as tables and written as JSON.

``--quick`` is the CI smoke version: a few small jobs, only to show the benchmark works (its
figures mean nothing). ``--only clients|server|magic|magic_path|faults|explore`` runs one
part; ``--out DIR`` is where the JSON goes (default ``bench/results``).
``--with-aiohttp-transport`` adds our client on the opt-in aiohttp transport to the client
comparison and the fault run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from ._common import REPO_ROOT
from .clients import ClientSettings, run_clients
from .explore import ExploreSettings, explore_table, run_explore
from .faults import FaultSettings, run_faults
from .magic import MagicSettings, run_magic
from .magic_path import MagicPathSettings, magic_path_table, run_magic_path
from .server_side import ServerSettings, run_server_side
from .startup import StartupSettings, run_startup, startup_table

PARTS = ("startup", "clients", "server", "magic", "magic_path", "faults", "explore")


def machine() -> dict[str, Any]:
    """Where the figures come from."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def _row(cells: list[Any], widths: list[int]) -> str:
    return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True))


def _table(title: str, header: list[str], rows: list[list[Any]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [title, _row(header, widths), _row(["-" * w for w in widths], widths)]
    lines += [_row(r, widths) for r in rows]
    return "\n".join(lines)


def clients_table(result: dict[str, Any]) -> str:
    """The client comparison as a text table."""
    rows = []
    for name, c in result["clients"].items():
        b = c["burst"]
        rows.append(
            [
                name,
                c["completion_to_result_ms"]["median"],
                c["completion_to_result_ms"]["p95"],
                c["http_requests_per_job"]["median"],
                c["cpu_ms_per_job"]["median"],
                f"{b['wall_s']} / {b['ideal_s']}",
                b["errors"],
                f"{b['peak_rss_mb']} (+{b['peak_growth_mb']})",
            ]
        )
    settings = result["settings"]
    floor = result["loopback_round_trip_ms"]["median"]
    title = (
        f"Clients: {settings['jobs']} jobs each, alternating, {settings['job_seconds']:g} s jobs; "
        f"burst of {settings['burst']} at once. Loopback round trip (floor): {floor} ms"
    )
    header = [
        "client",
        "latency median ms",
        "p95 ms",
        "requests/job",
        "CPU ms/job",
        f"{settings['burst']} jobs: wall / ideal s",
        "errors",
        "peak RSS MB (growth)",
    ]
    lines = [_table(title, header, rows), "Targets:"]
    for name, target in result["targets"].items():
        lines.append(f"  {name}: {json.dumps(target)}")
    return "\n".join(lines)


def server_table(result: dict[str, Any]) -> str:
    """The server-side figures as text."""
    s, p, g = result["streams"], result["polls"], result["long_log"]
    return "\n".join(
        [
            "Server:",
            f"  status streams held: {s['completed']}/{s['streams']} got COMPLETED "
            f"({s['opened']} opened in {s['all_open_s']} s, errors {s['errors']}); "
            f"fan-out median {s['completion_fan_out_ms'].get('median')} ms; "
            f"server RSS {s['server_rss_mb']['before']} -> "
            f"{s['server_rss_mb']['with_streams_open']} MB",
            f"  status polls: {p['polls_per_second']}/s from {p['pollers']} pollers "
            f"(median {p['latency_ms']['median']} ms, errors {p['errors']}); server CPU "
            f"{p['server_cpu_ms_per_poll']} ms/poll = {p['server_polls_per_cpu_second']} "
            "polls per CPU second",
            f"  {g['log_lines']}-line log: live {g['live']['submit_to_all_lines_s']} s from "
            f"submit (engine {g['live']['engine_run_s']} s), replayed "
            f"{g['replay_after_completion']['seconds']} s, one poll "
            f"{g['one_status_poll_with_all_lines']['seconds']} s",
        ]
    )


def magic_table(result: dict[str, Any]) -> str:
    """The magic's figures as text."""
    r, h, k = result["return"], result["headless"], result["kernel"]
    return "\n".join(
        [
            "Magic:",
            f"  return time (non-blocking): median {r['return_ms']['median']} ms, "
            f"p95 {r['return_ms']['p95']} ms over {r['return_ms']['n']}",
            f"  bytes added, headless (nbclient): {h['bytes_added']}",
            f"  bytes added, interactive: outputs {k['interactive']['cell_outputs_bytes']}, "
            f"widget state {k['interactive']['widget_state_bytes']}; --wait: outputs "
            f"{k['waiting']['cell_outputs_bytes']}, widget state "
            f"{k['waiting']['widget_state_bytes']}",
            f"  5,000-line job: {k['log_job']['comm_messages']} comm messages "
            f"({k['log_job']['comm_open']} open, {k['log_job']['comm_msg']} msg)",
            f"  targets: {json.dumps(result['targets'])}",
        ]
    )


def faults_table(result: dict[str, Any]) -> str:
    """The fault run as a markdown table, one column per client (BENCHMARKS.md's "Fault run")."""
    s, clients = result["settings"], result["clients"]
    names = list(clients)
    kinds = sorted({k for c in clients.values() for k in c["faults_by_kind"]})
    failures = sorted({k for c in clients.values() for k in c["failed_by_kind"]})

    def row(label: str, values: list[Any]) -> str:
        return "| " + " | ".join([label, *("" if v is None else str(v) for v in values)]) + " |"

    def each(key: str) -> list[Any]:
        return [clients[n].get(key) for n in names]

    lines = [
        f"Faults: {s['jobs']} jobs per client ({s['steps']} steps each, {s['in_flight']} in "
        f"flight), seed {s['seed']}, mixed plan (tests/faultproxy.py)",
        "",
        row("figure", names),
        "| " + " | ".join(["---"] * (len(names) + 1)) + " |",
        row("requests through the proxy", each("requests_through_proxy")),
        row("faults injected", each("faults_injected")),
        *(row(f"  {k}", [clients[n]["faults_by_kind"].get(k, 0) for n in names]) for k in kinds),
        row("results in hand", [f"{clients[n]['results_in_hand']}/{s['jobs']}" for n in names]),
        *(
            row(f"  failed: {k}", [clients[n]["failed_by_kind"].get(k, 0) for n in names])
            for k in failures
        ),
        row("requests queued by the server", each("requests_queued_by_server")),
        row("duplicate submits", each("duplicate_submits")),
        row("jobs with a lost or repeated log line", each("jobs_with_lost_or_repeated_log_line")),
        row("retries (client.stats)", each("retries")),
        row("stream fallbacks to polling", each("stream_fallbacks")),
        row("wall time (s)", each("wall_s")),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the CI smoke version")
    parser.add_argument("--only", choices=PARTS, action="append", help="run only these parts")
    parser.add_argument(
        "--with-aiohttp-transport",
        action="store_true",
        help="also run our client on the opt-in aiohttp transport, to see what it is worth",
    )
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "bench" / "results", help="JSON folder"
    )
    args = parser.parse_args(argv)
    parts = args.only or list(PARTS)
    args.out.mkdir(parents=True, exist_ok=True)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    common = {
        "command": " ".join(["python -m bench.run", *(argv if argv is not None else sys.argv[1:])]),
        "quick": args.quick,
        "machine": machine(),
    }
    started = time.monotonic()
    runs = {
        "startup": (
            lambda: run_startup(StartupSettings.quick() if args.quick else StartupSettings(), log),
            startup_table,
        ),
        "clients": (
            lambda: run_clients(
                ClientSettings.quick()
                if args.quick
                else ClientSettings(with_aiohttp_transport=args.with_aiohttp_transport),
                log,
            ),
            clients_table,
        ),
        "server": (
            lambda: run_server_side(
                ServerSettings.quick() if args.quick else ServerSettings(), log
            ),
            server_table,
        ),
        "magic": (
            lambda: run_magic(MagicSettings.quick() if args.quick else MagicSettings(), log),
            magic_table,
        ),
        "magic_path": (
            lambda: run_magic_path(
                MagicPathSettings.quick() if args.quick else MagicPathSettings(), log
            ),
            magic_path_table,
        ),
        "faults": (
            lambda: run_faults(
                FaultSettings.quick()
                if args.quick
                else FaultSettings(with_aiohttp_transport=args.with_aiohttp_transport),
                log,
            ),
            faults_table,
        ),
        "explore": (
            lambda: run_explore(ExploreSettings.quick() if args.quick else ExploreSettings(), log),
            explore_table,
        ),
    }
    for part in parts:
        run, table = runs[part]
        result = {**common, **run()}
        (args.out / f"{part}.json").write_text(json.dumps(result, indent=1) + "\n")
        print(table(result), flush=True)
        print(flush=True)
    log(f"done in {time.monotonic() - started:.0f} s; JSON in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
