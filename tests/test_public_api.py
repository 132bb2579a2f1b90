"""The public API is the one list in ``ltx_jupyter/__init__.py``, and every name on it works."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import ltx_jupyter

INIT = Path(ltx_jupyter.__file__)


def test_every_public_name_imports() -> None:
    for name in ltx_jupyter.__all__:
        assert getattr(ltx_jupyter, name) is not None, name


def test_the_type_checking_imports_name_exactly_the_lazy_table() -> None:
    tree = ast.parse(INIT.read_text())
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
    )
    imported = {
        (alias.asname or alias.name, "." + node.module)
        for node in block.body
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }
    assert imported == set(ltx_jupyter._LAZY.items())


def test_importing_the_package_loads_no_heavy_module() -> None:
    code = (
        "import sys, ltx_jupyter\n"
        "heavy = {'httpx', 'ipywidgets', 'IPython', 'aiohttp', 'numpy', 'av'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_load_ext_leaves_the_http_stack_to_a_background_import() -> None:
    # What %load_ext imports itself, and that the jobs' machinery arrives afterwards on the
    # preload thread, so the first %%ltx does not import it on the kernel's thread.
    code = (
        "import sys, threading\n"
        "import ltx_jupyter.magics\n"
        "wanted = {'httpx', 'ipywidgets', 'ltx_jupyter._jobs', 'ltx_jupyter._client'}\n"
        "print(sorted(wanted & set(sys.modules)))\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()\n"
        "shell.run_line_magic('load_ext', 'ltx_jupyter')\n"
        "for thread in threading.enumerate():\n"
        "    if thread.name == 'ltx-jupyter-preload':\n"
        "        thread.join(60)\n"
        "print(sorted({'httpx', 'ltx_jupyter._jobs'} & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "['httpx', 'ltx_jupyter._jobs']"], out.stdout
