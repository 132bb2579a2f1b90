"""What loading the extension costs: ``import ltx_jupyter`` and ``%load_ext ltx_jupyter`` in an
IPython ``InteractiveShell``, each timed in fresh Python processes (so nothing is cached in
memory; the operating system's file cache is warm after the first run), alternated. As in an
installed package, modules load from compiled bytecode: the processes write and read it under a
temporary ``PYTHONPYCACHEPREFIX`` (an uncounted first run writes it), even where
``PYTHONDONTWRITEBYTECODE`` is set, so the figures measure importing, not compiling the source.

``python -m bench.startup --compare DIR`` measures another checkout too, its processes
alternating with this one's (each checkout's package first on ``PYTHONPATH``), to compare a
change with the code before it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._common import REPO_ROOT, child_env, summary

__all__ = ["StartupSettings", "run_startup", "startup_table"]

_IMPORT = (
    "import time\n"
    "started = time.perf_counter()\n"
    "import ltx_jupyter\n"
    "print((time.perf_counter() - started) * 1000)\n"
)
_LOAD_EXT = (
    "import time\n"
    "from IPython.core.interactiveshell import InteractiveShell\n"
    "shell = InteractiveShell.instance()\n"
    "started = time.perf_counter()\n"
    "shell.run_line_magic('load_ext', 'ltx_jupyter')\n"
    "print((time.perf_counter() - started) * 1000)\n"
)


class StartupSettings:
    """How many fresh processes of each kind, on which checkouts (this one first)."""

    def __init__(self, *, runs: int = 15, compare: Sequence[Path] = ()) -> None:
        self.runs = runs
        self.trees = [REPO_ROOT, *compare]

    @classmethod
    def quick(cls) -> StartupSettings:
        return cls(runs=2)

    def to_json(self) -> dict[str, Any]:
        return {"runs": self.runs, "trees": [str(tree) for tree in self.trees]}


def _time_in_fresh_process(code: str, tree: Path, bytecode: Path) -> float:
    path = os.pathsep.join(p for p in (str(tree), os.environ.get("PYTHONPATH", "")) if p)
    # This tree first on the path (child_env puts this checkout there).
    env = child_env(PYTHONPATH=path, PYTHONPYCACHEPREFIX=str(bytecode))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    completed = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=tree.parent,  # not the checkout itself: the import must come from PYTHONPATH
        env=env,
        timeout=120,
    )
    return float(completed.stdout.strip().splitlines()[-1])


def run_startup(settings: StartupSettings, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Time both in ``settings.runs`` fresh processes each per checkout, the checkouts
    alternating, and return the figures (by checkout)."""
    times: dict[Path, dict[str, list[float]]] = {
        t: {"import": [], "load_ext": []} for t in settings.trees
    }
    with tempfile.TemporaryDirectory(prefix="ltx-bytecode-") as folder:
        caches = {tree: Path(folder) / str(index) for index, tree in enumerate(settings.trees)}
        for tree in settings.trees:  # not counted: writes the bytecode, warms the file cache
            _time_in_fresh_process(_LOAD_EXT, tree, caches[tree])
        for _ in range(settings.runs):
            for tree in settings.trees:
                times[tree]["import"].append(_time_in_fresh_process(_IMPORT, tree, caches[tree]))
                times[tree]["load_ext"].append(
                    _time_in_fresh_process(_LOAD_EXT, tree, caches[tree])
                )
    log(f"startup: {settings.runs} fresh processes of each kind per checkout")
    return {
        "settings": settings.to_json(),
        "trees": {
            str(tree): {
                "import_ms": summary(found["import"], 1.0, 1),
                "load_ext_ms": summary(found["load_ext"], 1.0, 1),
            }
            for tree, found in times.items()
        },
    }


def startup_table(result: dict[str, Any]) -> str:
    """The figures as text."""
    lines = [f"Startup ({result['settings']['runs']} fresh processes each, alternating):"]
    for tree, figures in result["trees"].items():
        i, e = figures["import_ms"], figures["load_ext_ms"]
        lines += [
            f"  {tree}",
            f"    import ltx_jupyter: median {i['median']} ms (min {i['min']}, max {i['max']})",
            f"    %load_ext ltx_jupyter: median {e['median']} ms (min {e['min']}, max {e['max']})",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__)
    parser.add_argument(
        "--compare", type=Path, action="append", default=[], help="another checkout to measure"
    )
    parser.add_argument("--runs", type=int, default=15, help="fresh processes of each kind")
    args = parser.parse_args(argv)
    compare = [tree.resolve() for tree in args.compare]
    result = run_startup(StartupSettings(runs=args.runs, compare=compare))
    print(startup_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
