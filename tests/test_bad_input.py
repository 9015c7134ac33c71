"""Bad input, as a hostile new user would type it: a clean message, exit 2, nothing written.

Every case asserts the exit status (2 for the command line, :class:`UserError` for the
Python API), no traceback, a message naming the problem (and, where there are any, the
valid choices), and that the working folder is unchanged: no run or sweep folder, nothing
half-written. The command line runs in-process through :func:`biohybrid.cli.cli` (the
function behind the ``biohybrid`` entry point) with captured output; a handful of cases run
the real ``biohybrid`` executable. Covers issue 12, items 5, 6, 10, 11, 12, 13, 15, 16, 18.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import biohybrid
from biohybrid.errors import UserError

EXE = str(Path(sys.executable).parent / "biohybrid")
SMALL = ["--set", "nx=4", "--set", "ny=4"]  # cases that build the model before failing
LONG = "x" * 300  # longer than any file name allowed (NAME_MAX = 255 on Linux)


def _tree(root: Path) -> dict[str, int]:
    """Every path under ``root`` with its size (0 for folders), to compare before and after."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(root))] = st.st_size if stat.S_ISREG(st.st_mode) else 0
    return out


def _flat(text: str) -> str:
    return " ".join(text.split())


SCENARIO_FILES = {
    "bad.toml": 'model = "demo"\n[run\n',
    "escape.toml": 'name = "../../x"\nmodel = "demo"\n',
    "absolute.toml": 'name = "/tmp/biohybrid-abs"\nmodel = "demo"\n',
    "empty-name.toml": 'name = ""\nmodel = "demo"\n',
    "hidden-name.toml": 'name = ".hidden"\nmodel = "demo"\n',
    "slash-name.toml": 'name = "a/b"\nmodel = "demo"\n',
    "number-name.toml": 'name = 5\nmodel = "demo"\n',
    "bool-nx.toml": 'model = "demo"\n[run]\nnx = true\n',
    "half-nx.toml": 'model = "demo"\n[run]\nnx = 1.5\n',
    "big-nx.toml": 'model = "demo"\n[run]\nnx = 1.0e4\n',
    "nan-t.toml": 'model = "demo"\n[run]\nt_end = nan\n',
    "inf-t.toml": 'model = "demo"\n[run]\nt_end = inf\n',
    "zero-dt.toml": 'model = "demo"\n[run]\ndt_output = 0\n',
    "unknown-param.toml": 'model = "demo"\n[params]\ndifusion = 1.0\n',
    "unknown-run.toml": 'model = "demo"\n[run]\nt_ned = 1.0\n',
    "text-param.toml": 'model = "demo"\n[params]\ndiffusion = "fast"\n',
    "array-param.toml": 'model = "demo"\n[params]\ndiffusion = [1, 2]\n',
    "bool-param.toml": 'model = "demo"\n[params]\ns_max = false\n',
    "run-not-table.toml": 'model = "demo"\nrun = 5\n',
    "params-not-table.toml": 'model = "demo"\nparams = "x"\n',
    "typo-key.toml": 'modle = "demo"\n',
    "no-model.toml": 'description = "no model"\n',
    "unknown-model.toml": 'model = "dmeo"\n',
    "number-model.toml": "model = 5\n",
    "text-seed.toml": 'model = "demo"\nseed = "x"\n',
    "bool-seed.toml": 'model = "demo"\nseed = true\n',
    "half-seed.toml": 'model = "demo"\nseed = 1.5\n',
    "negative-seed.toml": 'model = "demo"\nseed = -1\n',
    "number-description.toml": 'model = "demo"\ndescription = 3\n',
    "empty.toml": "",
    "markup-model.toml": 'model = "[/bold]"\n',
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Bad scenario files, a file, a full folder, a folder and a FIFO (made once, read-only)."""
    root = tmp_path_factory.mktemp("inputs")
    for name, text in SCENARIO_FILES.items():
        (root / name).write_text(text, encoding="utf-8")
    (root / "binary.toml").write_bytes(b"\xff\xfe\x00model")
    (root / "afile").write_text("not a folder\n")
    (root / "full").mkdir()
    (root / "full" / "keep.txt").write_text("someone's data\n")
    (root / "scenario-dir").mkdir()
    os.mkfifo(root / "fifo.toml")
    return root


@pytest.fixture
def work(inputs: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working folder (cwd) holding the inputs; each test checks it is left unchanged."""
    monkeypatch.chdir(inputs)
    return inputs


@pytest.fixture
def no_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail fast (and visibly) if a bad-input case ever gets as far as running or serving."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("bad input must be refused before anything runs")

    monkeypatch.setattr("biohybrid.model.HybridModel.step", refuse)
    monkeypatch.setattr("os.execve", refuse)


def _busy_port() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


# (id, argv, fragments that the one-paragraph message must contain)
CLI_CASES: list[tuple[str, list[str], list[str]]] = [
    # --- item 10: the command line's own usage errors (Typer raises its own exceptions)
    ("bare", [], ["Missing command", "Commands: list, run, show, sweep, viz"]),
    ("unknown-command", ["nosuch"], ["No such command 'nosuch'", "Commands:"]),
    ("typo-command", ["rnu", "demo"], ["No such command 'rnu'", "Did you mean 'run'"]),
    ("unknown-option", ["run", "demo", "--bogus"], ["No such option: --bogus", "--seed"]),
    ("unknown-top-option", ["--bogus"], ["No such option: --bogus", "Commands:"]),
    ("missing-argument", ["run"], ["Missing argument", "SCENARIO", "biohybrid run"]),
    ("show-missing-argument", ["show"], ["Missing argument", "SCENARIO"]),
    ("sweep-missing-argument", ["sweep"], ["Missing argument", "SCENARIO"]),
    ("viz-missing-argument", ["viz"], ["Missing argument", "SCENARIO"]),
    ("seed-abc", ["run", "demo", "--seed", "abc"], ["--seed", "integer"]),
    ("seed-1.5", ["run", "demo", "--seed", "1.5"], ["--seed", "integer"]),
    ("seed-true", ["run", "demo", "--seed", "true"], ["--seed", "integer"]),
    ("seed-empty", ["run", "demo", "--seed", ""], ["--seed", "integer"]),
    ("seed-no-value", ["run", "demo", "--seed"], ["--seed", "requires an argument"]),
    ("seed-negative", ["run", "demo", "--seed", "-1"], ["seed", ">= 0", "-1"]),
    ("workers-abc", ["sweep", "demo", "-p", "s_max=1,2", "--workers", "abc"], ["--workers"]),
    ("port-abc", ["viz", "demo", "--port", "abc"], ["--port", "integer"]),
    ("n-abc", ["sweep", "demo", "-p", "s_max=1:2", "--n", "abc"], ["--n", "integer"]),
    ("replicates-abc", ["sweep", "demo", "-p", "s_max=1,2", "-r", "abc"], ["--replicates"]),
    ("replicates-1.5", ["sweep", "demo", "-p", "s_max=1,2", "-r", "1.5"], ["--replicates"]),
    ("sweep-seed-abc", ["sweep", "demo", "-p", "s_max=1,2", "--seed", "abc"], ["--seed"]),
    ("extra-argument", ["run", "demo", "extra"], ["unexpected extra argument", "extra"]),
    ("list-extra", ["list", "extra"], ["unexpected extra argument"]),
    ("list-bogus", ["list", "--bogus"], ["No such option: --bogus", "--models"]),
    ("set-no-value", ["run", "demo", "--set"], ["--set", "requires an argument"]),
    ("design-no-value", ["sweep", "demo", "--design"], ["--design", "requires an argument"]),
    # --- item 5: booleans are not integers; 1.5 is not an integer
    ("set-nx-true", ["run", "demo", "--set", "nx=true"], ["nx", "true", "whole number"]),
    ("set-nx-false", ["run", "demo", "--set", "nx=false"], ["nx", "whole number", "<= 4096"]),
    ("set-nx-1.5", ["run", "demo", "--set", "nx=1.5"], ["nx", "1.5", "an integer"]),
    ("file-nx-true", ["run", "bool-nx.toml"], ["nx", "true", "[run] of scenario file"]),
    ("file-nx-1.5", ["run", "half-nx.toml"], ["nx", "1.5", "whole number"]),
    ("set-t_end-true", ["run", "demo", "--set", "t_end=true"], ["t_end", "not a number"]),
    ("set-s_max-true", ["run", "demo", "--set", "s_max=true"], ["s_max", "not a number"]),
    ("file-s_max-false", ["run", "bool-param.toml"], ["s_max", "false", "[params]"]),
    ("adpkd-bool-1", ["run", "adpkd-pkd1", "--set", "projective=1"], ["projective", "true/false"]),
    ("adpkd-bool-yes", ["run", "adpkd-pkd1", "--set", "projective=yes"], ["projective"]),
    ("adpkd-choice", ["run", "adpkd-pkd1", "--set", "germline=pkd3"], ["germline", "pkd1"]),
    ("adpkd-choice-number", ["run", "adpkd-pkd1", "--set", "germline=1"], ["germline", "text"]),
    ("show-nx-true", ["show", "demo", "--set", "nx=true"], ["nx", "whole number"]),
    ("viz-nx-true", ["viz", "demo", "--set", "nx=true"], ["nx", "whole number"]),
    ("sweep-set-nx-true", ["sweep", "demo", "-p", "s_max=1,2", "-s", "nx=true"], ["nx"]),
    # --- other --set values
    ("set-nx-0", ["run", "demo", "--set", "nx=0"], ["nx", ">= 1"]),
    ("set-nx-5000", ["run", "demo", "--set", "nx=5000"], ["nx", "<= 4096"]),
    ("set-nx-text", ["run", "demo", "--set", "nx=abc"], ["nx", "whole number"]),
    ("set-nx-quoted", ["run", "demo", "--set", 'nx="12"'], ["nx", "'12'"]),
    ("set-t_end-0", ["run", "demo", "--set", "t_end=0"], ["t_end", "> 0"]),
    ("set-t_end-negative", ["run", "demo", "--set", "t_end=-5"], ["t_end", "> 0"]),
    ("set-t_end-inf", ["run", "demo", "--set", "t_end=inf"], ["t_end", "finite"]),
    ("set-t_end-nan", ["run", "demo", "--set", "t_end=nan"], ["t_end", "finite"]),
    ("set-t_end-1e999", ["run", "demo", "--set", "t_end=1e999"], ["t_end", "finite"]),
    ("set-t_end-array", ["run", "demo", "--set", "t_end=[1, 2]"], ["t_end", "a number"]),
    ("set-t_end-table", ["run", "demo", "--set", "t_end={a = 1}"], ["t_end", "a number"]),
    ("set-t_end-empty", ["run", "demo", "--set", "t_end="], ["t_end", "a number"]),
    ("set-huge-integer", ["run", "demo", "--set", "diffusion=" + "9" * 400], ["too large"]),
    ("set-no-equals", ["run", "demo", "--set", "t_end"], ["NAME=VALUE", "t_end"]),
    ("set-empty-name", ["run", "demo", "--set", "=5"], ["NAME=VALUE", "name is missing"]),
    ("set-rtol-1", ["run", "demo", "--set", "rtol=1"], ["rtol", "< 1"]),
    ("set-dx-0", ["run", "demo", "--set", "dx=0"], ["dx", "> 0"]),
    ("set-diffusion-negative", ["run", "demo", "--set", "diffusion=-1"], ["diffusion", ">= 0"]),
    ("set-unknown", ["run", "demo", "--set", "difusion=1"], ["'difusion'", "'diffusion'"]),
    ("set-wrong-case", ["run", "demo", "--set", "T_END=1"], ["'T_END'", "Run settings"]),
    ("set-seed-is-not-a-param", ["run", "demo", "--set", "seed=3"], ["'seed'", "Run settings"]),
    # --- item 18: a repeated --set is refused, naming it
    ("set-twice", ["run", "demo", "--set", "nx=8", "--set", "nx=9"], ["--set nx", "twice"]),
    ("set-twice-spaces", ["run", "demo", "-s", " t_end =1", "-s", "t_end=2"], ["t_end", "twice"]),
    ("show-set-twice", ["show", "demo", "-s", "nx=8", "-s", "nx=8"], ["--set nx", "twice"]),
    ("viz-set-twice", ["viz", "demo", "-s", "nx=8", "-s", "nx=9"], ["--set nx", "twice"]),
    # --- item 12: brackets in user input print verbatim (no Rich markup)
    ("markup-scenario", ["run", "demo[/]"], ["'demo[/]'", "Bundled scenarios"]),
    ("markup-scenario-bold", ["run", "[bold]demo"], ["'[bold]demo'", "Unknown scenario"]),
    ("markup-set-value", ["run", "demo", "--set", "diffusion=[/bold]x"], ["'[/bold]x'"]),
    ("markup-set-params", ["run", "demo", "--set", "diffusion=[params]"], ["'[params]'"]),
    ("markup-set-name", ["run", "demo", "--set", "[/]=1"], ["'[/]'", "Unknown parameter"]),
    ("markup-file-params", ["run", "unknown-param.toml"], ["[params] of scenario file"]),
    ("markup-file-run", ["run", "unknown-run.toml"], ["[run] of scenario file", "'t_end'"]),
    ("markup-run-not-table", ["run", "run-not-table.toml"], ["'run' must be a table ([run])"]),
    ("markup-params-not-table", ["show", "params-not-table.toml"], ["([params])"]),
    ("markup-model-name", ["run", "markup-model.toml"], ["Unknown model '[/bold]'"]),
    # --- item 13: a valid-looking value the model cannot set up
    ("seed-radius-1e308", ["run", "demo", "--set", "seed_radius=1e308"], ["seed_radius"]),
    ("viz-seed-radius-1e308", ["viz", "demo", "--set", "seed_radius=1e308"], ["seed_radius"]),
    # --- item 6: a scenario name is one folder name under outputs/
    ("name-escapes", ["run", "escape.toml"], ["'../../x'", "folder name"]),
    ("name-absolute", ["run", "absolute.toml"], ["'/tmp/biohybrid-abs'", "folder name"]),
    ("name-empty", ["run", "empty-name.toml"], ["''", "folder name"]),
    ("name-hidden", ["run", "hidden-name.toml"], ["'.hidden'", "not starting with '.'"]),
    ("name-slash", ["sweep", "slash-name.toml", "-p", "s_max=1,2"], ["'a/b'", "folder name"]),
    ("name-number", ["run", "number-name.toml"], ["'name' must be text"]),
    # --- item 16: a folder, device or FIFO given as a scenario
    ("scenario-folder", ["run", "scenario-dir"], ["is a folder", "not a scenario file"]),
    ("scenario-folder-slash", ["show", "./scenario-dir/"], ["is a folder"]),
    ("scenario-dev-zero", ["run", "/dev/zero"], ["'/dev/zero' is a device"]),
    ("scenario-fifo", ["run", "fifo.toml"], ["is a FIFO"]),
    ("viz-scenario-fifo", ["viz", "fifo.toml"], ["is a FIFO"]),
    ("sweep-scenario-folder", ["sweep", "scenario-dir", "-p", "s_max=1,2"], ["is a folder"]),
    # --- scenario files
    ("file-malformed", ["run", "bad.toml"], ["Malformed scenario file", "bad.toml"]),
    ("file-missing", ["run", "nosuch.toml"], ["'nosuch.toml' does not exist", "Bundled"]),
    ("file-missing-dir", ["run", "no/such.toml"], ["does not exist"]),
    ("file-unknown-scenario", ["run", "dmeo"], ["Unknown scenario 'dmeo'", "'demo'"]),
    ("file-binary", ["run", "binary.toml"], ["binary.toml"]),
    ("file-empty", ["run", "empty.toml"], ["does not name a model"]),
    ("file-typo-key", ["run", "typo-key.toml"], ["Unknown key 'modle'", "'model'", "Valid keys"]),
    ("file-no-model", ["run", "no-model.toml"], ["does not name a model"]),
    ("file-unknown-model", ["run", "unknown-model.toml"], ["Unknown model 'dmeo'", "'demo'"]),
    ("file-model-number", ["run", "number-model.toml"], ["'model' must be text"]),
    ("file-seed-text", ["run", "text-seed.toml"], ["'seed' must be a whole number"]),
    ("file-seed-bool", ["run", "bool-seed.toml"], ["'seed' must be a whole number"]),
    ("file-seed-1.5", ["run", "half-seed.toml"], ["'seed' must be a whole number"]),
    ("file-seed-negative", ["run", "negative-seed.toml"], ["seed", ">= 0", "-1"]),
    ("file-description-number", ["run", "number-description.toml"], ["'description' must be"]),
    ("file-nx-too-big", ["run", "big-nx.toml"], ["nx", "<= 4096"]),
    ("file-t_end-nan", ["run", "nan-t.toml"], ["t_end", "finite"]),
    ("file-t_end-inf", ["run", "inf-t.toml"], ["t_end", "finite"]),
    ("file-dt-0", ["run", "zero-dt.toml"], ["dt_output", "> 0"]),
    ("file-text-param", ["run", "text-param.toml"], ["diffusion", "'fast'", "a number"]),
    ("file-array-param", ["run", "array-param.toml"], ["diffusion", "a number"]),
    # --- item 11: output locations
    ("out-proc", ["run", "demo", *SMALL, "--out", "/proc/x"], ["'/proc/x'", "Cannot create"]),
    ("out-under-file", ["run", "demo", *SMALL, "--out", "afile/sub"], ["'afile' is a file"]),
    ("out-is-file", ["run", "demo", *SMALL, "--out", "afile"], ["'afile'", "existing file"]),
    ("out-not-empty", ["run", "demo", *SMALL, "--out", "full"], ["'full'", "not empty"]),
    ("out-cwd", ["run", "demo", *SMALL, "--out", ""], ["not empty"]),
    (
        "out-dev-null",
        ["run", "demo", *SMALL, "--out", "/dev/null"],
        ["'/dev/null'", "not a folder"],
    ),
    ("out-name-too-long", ["run", "demo", *SMALL, "--out", LONG], ["too long"]),
    ("sweep-out-file", ["sweep", "demo", "-p", "s_max=1,2", "--out", "afile"], ["existing file"]),
    ("sweep-out-under-file", ["sweep", "demo", "-p", "s_max=1,2", "--out", "afile/s"], ["file"]),
    ("sweep-out-proc", ["sweep", "demo", "-p", "s_max=1,2", "--out", "/proc/x"], ["/proc/x"]),
    ("sweep-out-not-sweep", ["sweep", "demo", "-p", "s_max=1,2", "--out", "full"], ["sweep.json"]),
    # --- sweeps on the command line
    ("sweep-no-param", ["sweep", "demo"], ["at least one parameter"]),
    ("param-no-equals", ["sweep", "demo", "-p", "s_max"], ["NAME=v1,v2", "NAME=lo:hi"]),
    ("param-empty-name", ["sweep", "demo", "-p", "=1,2"], ["name is missing"]),
    ("param-no-values", ["sweep", "demo", "-p", "s_max="], ["s_max", "no values"]),
    ("param-three-part-range", ["sweep", "demo", "-p", "s_max=1:2:3"], ["lo:hi", "1:2:3"]),
    ("param-half-range", ["sweep", "demo", "-p", "s_max=1:"], ["lo:hi", "'1:'"]),
    ("param-unknown", ["sweep", "demo", "-p", "s_mx=1,2"], ["'s_mx'", "'s_max'"]),
    ("param-twice", ["sweep", "demo", "-p", "s_max=1", "-p", "s_max=2"], ["twice"]),
    ("param-repeated-values", ["sweep", "demo", "-p", "s_max=1,1"], ["Repeated values"]),
    ("param-out-of-range", ["sweep", "demo", "-p", "s_max=-1,2"], ["s_max", ">= 0", "--param"]),
    ("param-bool-for-int", ["sweep", "demo", "-p", "nx=true,false"], ["nx", "whole number"]),
    ("param-half-for-int", ["sweep", "demo", "-p", "nx=1.5,2"], ["nx", "1.5"]),
    ("param-range-grid-no-n", ["sweep", "demo", "-p", "s_max=0.1:1"], ["n >= 2"]),
    ("lhs-list", ["sweep", "demo", "-d", "lhs", "--n", "4", "-p", "s_max=0.1,1"], ["lo:hi"]),
    ("sobol-list", ["sweep", "demo", "-d", "sobol", "--n", "4", "-p", "s_max=0.1,1"], ["lo:hi"]),
    ("morris-list", ["sweep", "demo", "-d", "morris", "--n", "4", "-p", "s_max=1,2"], ["lo:hi"]),
    ("lhs-no-n", ["sweep", "demo", "-d", "lhs", "-p", "s_max=0.1:1"], ["needs n"]),
    ("sobol-not-power", ["sweep", "demo", "-d", "sobol", "--n", "12", "-p", "s_max=0:1"], ["12"]),
    ("morris-n-1", ["sweep", "demo", "-d", "morris", "--n", "1", "-p", "s_max=0:1"], ["n >= 2"]),
    ("lhs-reversed", ["sweep", "demo", "-d", "lhs", "--n", "4", "-p", "s_max=1:0.1"], ["lo < hi"]),
    ("lhs-text", ["sweep", "demo", "-d", "lhs", "--n", "4", "-p", "s_max=a:b"], ["two numbers"]),
    ("lhs-infinite", ["sweep", "demo", "-d", "lhs", "--n", "4", "-p", "s_max=0:inf"], ["finite"]),
    ("lhs-end-out-of-range", ["sweep", "demo", "-d", "lhs", "--n", "2", "-p", "nx=0:9"], [">= 1"]),
    ("design-unknown", ["sweep", "demo", "-d", "lhsx", "-p", "s_max=1,2"], ["'lhsx'", "grid"]),
    ("replicates-0", ["sweep", "demo", "-p", "s_max=1,2", "-r", "0"], ["replicates", ">= 1"]),
    ("n-0", ["sweep", "demo", "-d", "lhs", "--n", "0", "-p", "s_max=0:1"], ["n must be", ">= 1"]),
    ("workers-0", ["sweep", "demo", "-p", "s_max=1,2", "-w", "0"], ["workers", ">= 1"]),
    ("workers-negative", ["sweep", "demo", "-p", "s_max=1,2", "-w", "-1"], ["workers", ">= 1"]),
    ("sweep-seed-negative", ["sweep", "demo", "-p", "s_max=1,2", "--seed", "-1"], ["seed"]),
    ("param-seed", ["sweep", "demo", "-p", "seed=1,2"], ["replicates"]),
    ("swept-and-set", ["sweep", "demo", "-p", "s_max=1,2", "-s", "s_max=3"], ["--set", "s_max"]),
    # --- viz (validated before the server starts; os.execve must not be reached)
    ("viz-unknown", ["viz", "nosuch"], ["Unknown scenario 'nosuch'"]),
    ("viz-port-negative", ["viz", "demo", "--port", "-1"], ["--port", "between 0 and 65535"]),
    ("viz-port-too-big", ["viz", "demo", "--port", "70000"], ["--port", "65535"]),
    ("viz-host-unknown", ["viz", "demo", "--host", "nosuch.invalid"], ["--host 'nosuch.invalid'"]),
    ("viz-host-not-local", ["viz", "demo", "--host", "192.0.2.1"], ["--host '192.0.2.1'"]),
    ("viz-host-empty", ["viz", "demo", "--host", ""], ["--host"]),
    ("viz-seed-negative", ["viz", "demo", "--seed", "-1"], ["seed", ">= 0"]),
    ("viz-seed-abc", ["viz", "demo", "--seed", "abc"], ["--seed", "integer"]),
]


@pytest.mark.parametrize(
    ("args", "fragments"), [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES]
)
def test_cli_bad_input(
    work: Path, no_runs: None, capsys: pytest.CaptureFixture, args: list[str], fragments: list[str]
) -> None:
    from biohybrid.cli import cli

    before = _tree(work)
    code = cli(args)
    cap = capsys.readouterr()
    assert code == 2, (code, cap.out, cap.err)
    assert "Traceback" not in cap.out + cap.err
    message = _flat(cap.err)
    assert message.startswith("error: "), cap.err
    assert len(cap.err.strip().splitlines()) == 1, cap.err  # one paragraph
    for fragment in fragments:
        assert fragment in message, message
    assert _tree(work) == before
    assert not Path("/tmp/biohybrid-abs").exists()


def test_cli_port_in_use_is_a_port_problem(work: Path, no_runs: None, capsys) -> None:
    from biohybrid.cli import cli

    with _busy_port() as s:
        port = s.getsockname()[1]
        assert cli(["viz", "demo", "--port", str(port)]) == 2
    message = _flat(capsys.readouterr().err)
    assert f"port {port}" in message and "in use" in message and "--port" in message
    assert "--host" not in message


def test_cli_default_location_blocked_by_a_file(
    tmp_path: Path, monkeypatch, no_runs: None, capsys
) -> None:
    """No --out: outputs/ itself is a file, so outputs/<scenario>/<id> cannot be made."""
    from biohybrid.cli import cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs").write_text("a file where the outputs folder would go\n")
    before = _tree(tmp_path)
    assert cli(["run", "demo", "--set", "nx=4", "--set", "ny=4"]) == 2
    message = _flat(capsys.readouterr().err)
    assert "outputs' is a file" in message
    assert _tree(tmp_path) == before


# ---------------------------------------------------------------- the Python API (item 15)

API_CASES: list[tuple[str, Any, type[Exception], list[str]]] = [
    ("run-seed-text", lambda: biohybrid.run("demo", seed="7"), UserError, ["seed", "'7'"]),
    ("run-seed-1.5", lambda: biohybrid.run("demo", seed=1.5), UserError, ["seed", "1.5"]),
    ("run-seed-bool", lambda: biohybrid.run("demo", seed=True), UserError, ["seed", "true"]),
    ("run-seed-negative", lambda: biohybrid.run("demo", seed=-1), UserError, ["seed", ">= 0"]),
    (
        "run-overrides-text",
        lambda: biohybrid.run("demo", overrides="t_end=60"),
        UserError,
        ["overrides must be a mapping", "{'t_end': 60}"],
    ),
    (
        "run-overrides-list",
        lambda: biohybrid.run("demo", overrides=["t_end"]),
        UserError,
        ["overrides must be a mapping", "list"],
    ),
    (
        "run-overrides-bool",
        lambda: biohybrid.run("demo", overrides={"t_end": True}),
        UserError,
        ["t_end", "in overrides", "not a number"],
    ),
    (
        "run-overrides-half-int",
        lambda: biohybrid.run("demo", overrides={"nx": 1.5}),
        UserError,
        ["nx", "in overrides", "1.5"],
    ),
    (
        "run-overrides-unknown",
        lambda: biohybrid.run("demo", overrides={"difusion": 1.0}),
        UserError,
        ["'difusion' in overrides", "'diffusion'"],
    ),
    (
        "run-overrides-key-number",
        lambda: biohybrid.run("demo", overrides={1: 2}),
        UserError,
        ["names in overrides must be text"],
    ),
    (
        "run-overrides-numpy-bool",
        lambda: biohybrid.run("demo", overrides={"nx": np.bool_(True)}),
        UserError,
        ["nx", "whole number"],
    ),
    (
        "run-seed-radius-overflow",
        lambda: biohybrid.run("demo", overrides={"seed_radius": 1e308}),
        UserError,
        ["seed_radius", "OverflowError"],
    ),
    (
        "run-out-proc",
        lambda: biohybrid.run("demo", overrides={"nx": 4}, out="/proc/x"),
        UserError,
        ["/proc/x"],
    ),
    (
        "run-out-file",
        lambda: biohybrid.run("demo", overrides={"nx": 4}, out="afile"),
        UserError,
        ["existing file"],
    ),
    ("run-scenario-fifo", lambda: biohybrid.run("fifo.toml"), UserError, ["FIFO"]),
    ("run-scenario-folder", lambda: biohybrid.run("scenario-dir"), UserError, ["a folder"]),
    ("run-name-escapes", lambda: biohybrid.run("escape.toml"), UserError, ["'../../x'"]),
    (
        "load-seed-text",
        lambda: biohybrid.load_scenario("demo", seed="7"),
        UserError,
        ["seed", "'7'", "str"],
    ),
    (
        "sweep-params-list",
        lambda: biohybrid.sweep("demo", ["s_max"]),
        UserError,
        ["params must be a mapping", "list"],
    ),
    (
        "sweep-params-text",
        lambda: biohybrid.sweep("demo", "s_max=1,2"),
        UserError,
        ["params must be a mapping", "str"],
    ),
    (
        "sweep-params-2d-array",
        lambda: biohybrid.sweep("demo", {"s_max": np.ones((2, 2))}),
        UserError,
        ["one-dimensional", "(2, 2)"],
    ),
    (
        "sweep-params-set",
        lambda: biohybrid.sweep("demo", {"s_max": {1.0, 2.0}}),
        UserError,
        ["set", "no order"],
    ),
    (
        "sweep-params-key-number",
        lambda: biohybrid.sweep("demo", {5: [1, 2]}),
        UserError,
        ["names in params must be text"],
    ),
    (
        "sweep-param-value-wording",
        lambda: biohybrid.sweep("demo", {"s_max": [-1.0, 1.0]}),
        UserError,
        ["s_max", "the sweep's params values"],
    ),
    (
        "sweep-lhs-list",
        lambda: biohybrid.sweep("demo", {"s_max": [0.1, 1.0]}, design="lhs", n=4),
        UserError,
        ["tuple (lo, hi)", "lo:hi", "list of values"],
    ),
    (
        "sweep-lhs-array",
        lambda: biohybrid.sweep("demo", {"s_max": np.array([0.1, 1.0])}, design="sobol", n=4),
        UserError,
        ["tuple (lo, hi)"],
    ),
    (
        "sweep-range-mapping-no-hi",
        lambda: biohybrid.sweep("demo", {"s_max": {"lo": 0.1}}, design="lhs", n=4),
        UserError,
        ["'lo' and 'hi'"],
    ),
    (
        "sweep-range-text",
        lambda: biohybrid.sweep("demo", {"s_max": (0.1, "a")}, design="lhs", n=4),
        UserError,
        ["two numbers"],
    ),
    (
        "sweep-workers-1.5",
        lambda: biohybrid.sweep("demo", {"s_max": [1, 2]}, workers=1.5),
        UserError,
        ["workers", "1.5"],
    ),
    (
        "sweep-workers-text",
        lambda: biohybrid.sweep("demo", {"s_max": [1, 2]}, workers="2"),
        UserError,
        ["workers", "'2'"],
    ),
    (
        "sweep-workers-bool",
        lambda: biohybrid.sweep("demo", {"s_max": [1, 2]}, workers=True),
        UserError,
        ["workers", "true"],
    ),
    (
        "sweep-workers-0",
        lambda: biohybrid.sweep("demo", {"s_max": [1, 2]}, workers=0),
        UserError,
        ["workers", ">= 1"],
    ),
    (
        "sweep-seed-1.5",
        lambda: biohybrid.sweep("demo", {"s_max": [1, 2]}, seed=1.5),
        UserError,
        ["seed", "1.5"],
    ),
    (
        "sweep-seed-text",
        lambda: biohybrid.sweep("demo", {"s_max": [1, 2]}, seed="7"),
        UserError,
        ["seed", "'7'"],
    ),
    (
        "sweep-replicates-1.5",
        lambda: biohybrid.sweep("demo", {"s_max": [1, 2]}, replicates=1.5),
        UserError,
        ["replicates", "1.5"],
    ),
    (
        "sweep-replicates-bool",
        lambda: biohybrid.sweep("demo", {"s_max": [1, 2]}, replicates=True),
        UserError,
        ["replicates", "true"],
    ),
    (
        "sweep-n-2.5",
        lambda: biohybrid.sweep("demo", {"s_max": (0, 1)}, design="lhs", n=2.5),
        UserError,
        ["n must be", "2.5"],
    ),
    (
        "sweep-overrides-text",
        lambda: biohybrid.sweep("demo", {"s_max": [1, 2]}, overrides="t_end=60"),
        UserError,
        ["overrides must be a mapping"],
    ),
    (
        "sweep-overrides-bool",
        lambda: biohybrid.sweep("demo", {"s_max": [1, 2]}, overrides={"nx": True}),
        UserError,
        ["nx", "in overrides"],
    ),
    (
        "sweep-swept-and-fixed",
        lambda: biohybrid.sweep("demo", {"s_max": [1, 2]}, overrides={"s_max": 3.0}),
        UserError,
        ["both swept and fixed in overrides"],
    ),
    (
        "sweep-out-number",
        lambda: biohybrid.sweep("demo", {"s_max": [1, 2]}, out=5),
        UserError,
        ["out must be a folder path"],
    ),
    (
        "sweep-out-file",
        lambda: biohybrid.sweep("demo", {"s_max": [1, 2]}, out="afile"),
        UserError,
        ["'afile'", "existing file"],
    ),
    (
        "sweep-progress-text",
        lambda: biohybrid.sweep("demo", {"s_max": [1, 2]}, progress="yes"),
        UserError,
        ["progress must be"],
    ),
    (
        "sweep-retry-text",
        lambda: biohybrid.sweep("demo", {"s_max": [1, 2]}, retry_failed="no"),
        UserError,
        ["retry_failed must be true or false"],
    ),
    (
        "sweep-design-number",
        lambda: biohybrid.sweep("demo", {"s_max": [1, 2]}, design=5),
        UserError,
        ["Unknown design '5'", "grid, lhs, sobol, morris"],
    ),
    (
        "sweep-metrics-number",
        lambda: biohybrid.sweep("demo", {"s_max": [1, 2]}, metrics=5),
        UserError,
        ["metrics must be a callable"],
    ),
]


@pytest.mark.parametrize(
    ("call", "kind", "fragments"), [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES]
)
def test_api_bad_input(
    work: Path, no_runs: None, call: Any, kind: type[Exception], fragments: list[str]
) -> None:
    before = _tree(work)
    with pytest.raises(kind) as info:
        call()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    assert "in --set" not in message  # a Python overrides is not a command-line --set
    assert _tree(work) == before


def test_api_accepts_numpy_arrays_of_sweep_values() -> None:
    from biohybrid.registry import get_model
    from biohybrid.sweep import make_design

    demo = get_model("demo")
    listed = make_design({"s_max": [0.1, 0.5], "nx": [8, 9]}, model_cls=demo, replicates=2)
    arrays = make_design(
        {"s_max": np.array([0.1, 0.5]), "nx": np.arange(8, 10)},
        model_cls=demo,
        replicates=np.int64(2),
        seed=np.int64(0),
    )
    assert arrays.to_dict() == listed.to_dict()
    assert arrays.runs().equals(listed.runs())


def test_strict_types_accept_whole_floats_and_numpy_scalars() -> None:
    """The strict checks refuse only what is wrong: 2.0 is 2 and NumPy scalars are numbers."""
    sc = biohybrid.load_scenario(
        "demo", {"nx": 12.0, "ny": np.int64(10), "t_end": np.float32(60.0), "s_max": 3}
    )
    assert (sc.run["nx"], sc.run["ny"], sc.run["t_end"]) == (12, 10, 60.0)
    assert type(sc.run["nx"]) is int and type(sc.params["s_max"]) is float


# ------------------------------------------------------------------- item 18, smaller things


def test_run_exit_codes() -> None:
    from types import SimpleNamespace

    from biohybrid.cli import run_exit_code

    def result(status: str, stop_signal: str | None = None) -> SimpleNamespace:
        return SimpleNamespace(status=status, message="", stop_signal=stop_signal)

    assert run_exit_code(result("completed")) == 0
    assert run_exit_code(result("failed")) == 1
    assert run_exit_code(result("interrupted")) == 130  # Ctrl-C (KeyboardInterrupt)
    assert run_exit_code(result("interrupted", "SIGINT")) == 130
    assert run_exit_code(result("interrupted", "SIGTERM")) == 143


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_output_files_follow_the_umask(tmp_path: Path, mask: int) -> None:
    from biohybrid.io import atomic_write_bytes

    old = os.umask(mask)
    try:
        atomic_write_bytes(tmp_path / "f.json", b"{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.json").stat().st_mode) == 0o666 & ~mask


def test_viz_port_0_prints_the_real_port(tmp_path: Path, monkeypatch, capsys) -> None:
    from biohybrid.cli import cli

    calls = []
    monkeypatch.setattr("os.execve", lambda exe, argv, env: calls.append(argv))
    assert cli(["viz", "demo", "--port", "0", "--set", "nx=6", "--set", "ny=6"]) == 0
    ((argv,),) = [(a,) for a in calls]
    port = int(argv[argv.index("--port") + 1])
    assert port > 0
    assert f"http://127.0.0.1:{port}/" in capsys.readouterr().out


def test_a_failed_figure_write_is_said_on_the_console(tmp_path: Path, monkeypatch, capsys) -> None:
    from biohybrid.cli import cli

    monkeypatch.chdir(tmp_path)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("biohybrid.observers.save_figure", broken)
    args = ["run", "demo", "-s", "t_end=30", "-s", "nx=6", "-s", "ny=6", "--out", "r"]
    assert cli(args) == 0
    cap = capsys.readouterr()
    assert "warning: the run's figures could not be written" in cap.err
    assert "No space left on device" in cap.err
    assert json.loads((tmp_path / "r" / "manifest.json").read_text())["status"] == "completed"


def test_help_still_exits_0(capsys) -> None:
    from biohybrid.cli import cli

    assert cli(["--help"]) == 0
    assert cli(["run", "--help"]) == 0
    assert "--set" in capsys.readouterr().out


# ----------------------------------------------------- the real executable (a handful of cases)


def _exe(args: list[str], cwd: Path, env: dict, **kwargs: Any) -> subprocess.CompletedProcess:
    return subprocess.run(
        [EXE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, **kwargs
    )


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        ([], ["Missing command", "Commands:"]),
        (["run", "demo", "--set", "diffusion=[/bold]x", "--out", "x"], ["'[/bold]x'"]),
    ],
    ids=["bare", "markup-value"],
)
def test_executable_bad_input(tmp_path: Path, cli_env: dict, args: list[str], fragments) -> None:
    p = _exe(args, tmp_path, cli_env)
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stdout + p.stderr
    message = _flat(p.stderr)
    for fragment in fragments:
        assert fragment in message, message
    assert list(tmp_path.iterdir()) == []


def test_executable_failed_first_write_leaves_no_folder(tmp_path: Path, cli_env: dict) -> None:
    """`ulimit -f 1`: the manifest cannot be written; the folder made for it is removed."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))

    out = tmp_path / "run"
    args = ["run", "demo", "-s", "nx=4", "-s", "ny=4", "-s", "t_end=30", "--out", str(out)]
    p = _exe(args, tmp_path, cli_env, preexec_fn=limit)
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stdout + p.stderr
    message = _flat(p.stderr)
    assert "Cannot write into the output folder" in message and "too large" in message
    assert not out.exists()  # the same --out can be used again


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_executable_sigterm_exits_143(tmp_path: Path, cli_env: dict) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [EXE, "run", "demo", "-s", "t_end=108000", "-s", "dt_output=5", "--out", str(out)],
        cwd=tmp_path, env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out / "manifest.json").exists():
        time.sleep(0.1)
    time.sleep(1.0)  # inside the time loop
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted"
