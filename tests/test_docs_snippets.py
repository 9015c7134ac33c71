"""The documented Python sweep examples run as written, saved as scripts (issue 12, item 4).

Each ```python block of the README's sweep section and of docs/sweeps.md "From a script" is
saved unchanged as a script and run with this interpreter in an empty folder: it must exit
0 and leave sweep folders whose runs all completed. The same script without its
``if __name__ == "__main__":`` guard must stop with the clear message before writing
anything (it used to record every run as "a worker process died" and exit 0).
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from biohybrid.sweep import load_sweep

REPO = Path(__file__).resolve().parents[1]
GUARD = 'if __name__ == "__main__":'
DEADLINE = 600.0  # s, for a loaded machine; never an assertion on speed
SNIPPETS = {  # name: (file, the heading the block follows)
    "readme": ("README.md", "## Parameter sweeps and sensitivity analysis"),
    "docs": ("docs/sweeps.md", "## From a script"),
}


def _snippet(file: str, heading: str) -> str:
    text = (REPO / file).read_text(encoding="utf-8")
    start = text.index(heading + "\n")
    match = re.compile(r"^```python\n(.*?)^```$", re.S | re.M).search(text, start)
    assert match is not None, f"no python block after {heading!r} in {file}"
    return match.group(1)


def _unguarded(code: str) -> str:
    """The same code with the guard's body moved to the top level."""
    head, sep, body = code.partition(GUARD)
    assert sep and head.strip(), "the example must have its guard, after the imports"
    assert body.endswith("\n") and all(
        not ln or ln.startswith("    ") for ln in body.splitlines()[1:]
    ), "the guard must hold the rest of the example"
    return head + textwrap.dedent(body.split("\n", 1)[1])


def _start(folder: Path, code: str, env: dict) -> subprocess.Popen:
    folder.mkdir()
    (folder / "example.py").write_text(code, encoding="utf-8")
    return subprocess.Popen(
        [sys.executable, "example.py"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_documented_sweep_examples_run_as_written(tmp_path: Path, cli_env: dict) -> None:
    procs = {}
    for name, (file, heading) in SNIPPETS.items():
        code = _snippet(file, heading)
        assert GUARD in code, f"the {file} example lost its guard"
        procs[name] = (_start(tmp_path / name, code, cli_env), code)
    # one end-to-end check of the refusal (the check itself is tested on both examples below)
    bare = _unguarded(_snippet(*SNIPPETS["readme"]))
    procs["readme-unguarded"] = (_start(tmp_path / "readme-x", bare, cli_env), "")
    results = {
        name: (p.communicate(timeout=DEADLINE), p.returncode) for name, (p, _) in procs.items()
    }
    for name, (_, code) in procs.items():
        (_, stderr), rc = results[name]
        if code:  # as written: every sweep it calls ran every run to completion
            assert rc == 0, f"{name}: exit {rc}\n{stderr}"
            folders = sorted((tmp_path / name).rglob("sweep.json"))
            assert len(folders) == code.count("biohybrid.sweep("), folders
            for meta in folders:
                df = load_sweep(meta.parent)
                assert len(df) == df.attrs["sweep"]["n_runs"] > 0
                assert (df["status"] == "completed").all(), df[["status", "error"]]
        else:  # unguarded: refused before anything runs or is written
            assert rc == 1, f"{name}: exit {rc}\n{stderr}"
            assert "UserError" in stderr and f"without an `{GUARD}` guard" in stderr, stderr
            assert "example.py' (line" in stderr
            written = sorted(p.name for p in (tmp_path / f"{name.split('-')[0]}-x").iterdir())
            assert written == ["example.py"], written


@pytest.mark.parametrize("name", list(SNIPPETS))
def test_the_unguarded_check_passes_the_guarded_examples(name: str) -> None:
    """The check itself, on the parsed examples: guarded lines are not re-run by workers."""
    import ast

    from biohybrid.sweep.execute import _reached_by_worker

    code = _snippet(*SNIPPETS[name])
    tree, bare = ast.parse(code), ast.parse(_unguarded(code))
    calls = [
        n.lineno
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and "sweep" in ast.unparse(n.func)
    ]
    bare_calls = [
        n.lineno
        for n in ast.walk(bare)
        if isinstance(n, ast.Call) and "sweep" in ast.unparse(n.func)
    ]
    assert calls and not any(_reached_by_worker(tree.body, line) for line in calls)
    assert bare_calls and all(_reached_by_worker(bare.body, line) for line in bare_calls)
