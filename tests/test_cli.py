"""The command line end to end, in a temporary folder, as a user would type it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXE = str(Path(sys.executable).parent / "biohybrid")


def _run(
    args: list[str], cwd: Path, env: dict, timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [EXE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_list_shows_one_line_per_scenario(tmp_path: Path, cli_env: dict) -> None:
    p = _run(["list"], tmp_path, cli_env)
    assert p.returncode == 0, p.stderr
    lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
    assert any(ln.startswith("demo ") for ln in lines)
    from biohybrid.registry import bundled_scenarios

    assert len(lines) == len(bundled_scenarios())


def test_show_prints_parameters_with_units(tmp_path: Path, cli_env: dict) -> None:
    p = _run(["show", "demo", "--set", "diffusion=123"], tmp_path, cli_env)
    assert p.returncode == 0, p.stderr
    assert "diffusion" in p.stdout and "123" in p.stdout and "µm²/min" in p.stdout
    assert "t_end" in p.stdout and "min" in p.stdout


def test_run_end_to_end(tmp_path: Path, cli_env: dict) -> None:
    args = ["run", "demo", "--set", "t_end=60", "--set", "nx=12", "--set", "ny=12"]
    p = _run([*args, "--set", "seed_radius=2", "--seed", "4"], tmp_path, cli_env)
    assert p.returncode == 0, p.stderr
    runs = list((tmp_path / "outputs" / "demo").iterdir())
    assert len(runs) == 1
    man = json.loads((runs[0] / "manifest.json").read_text())
    assert man["status"] == "completed" and man["seed"] == 4
    assert man["scenario"]["run"]["nx"] == 12
    assert (runs[0] / "biomarkers.csv").exists()
    assert (runs[0] / "figures" / "biomarkers.png").exists()


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["run", "dmeo"], ["Unknown scenario 'dmeo'", "Did you mean 'demo'", "Bundled scenarios"]),
        (["run", "demo", "--set", "difusion=1"], ["Unknown parameter 'difusion'", "'diffusion'"]),
        (["run", "demo", "--set", "diffusion=-1"], ["diffusion", ">= 0"]),
        (["run", "demo", "--set", "diffusion=abc"], ["diffusion", "a number"]),
        (["run", "demo", "--set", "diffusion=nan"], ["diffusion"]),
        (["run", "demo", "--set", "t_end"], ["NAME=VALUE"]),
        (["show", "nosuch"], ["Unknown scenario 'nosuch'"]),
        (["run", "bad.toml"], ["Malformed scenario file", "bad.toml"]),
    ],
)
def test_user_errors_exit_2_without_traceback_or_output(
    tmp_path: Path, cli_env: dict, args: list[str], fragments: list[str]
) -> None:
    (tmp_path / "bad.toml").write_text('model = "demo"\n[run\n')
    p = _run(args, tmp_path, cli_env)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr + p.stdout
    flat = " ".join(p.stderr.split())
    for fragment in fragments:
        assert fragment in flat, flat
    assert not (tmp_path / "outputs").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_keeps_what_was_written(tmp_path: Path, cli_env: dict) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [EXE, "run", "demo", "--set", "t_end=108000", "--set", "dt_output=5",
         "--out", str(out)],
        cwd=tmp_path, env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "manifest.json").exists():
        time.sleep(0.2)
    time.sleep(3.0)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    man = json.loads((out / "manifest.json").read_text())
    assert man["status"] == "interrupted"
    assert "interrupted" in stdout
    rows = (out / "biomarkers.csv").read_text().splitlines()
    assert len(rows) >= 2  # header + the t = 0 row at least


def test_installed_copy_finds_models_and_scenarios(tmp_path: Path, cli_env: dict) -> None:
    """`pip install .` elsewhere still finds the bundled models and scenarios."""
    repo = Path(__file__).resolve().parents[1]
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--target", str(target), str(repo)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    env = dict(cli_env)
    env["PYTHONPATH"] = str(target)
    work = tmp_path / "elsewhere"
    work.mkdir()
    code = (
        "import biohybrid, biohybrid.registry as r;"
        "assert 'site' in biohybrid.__file__, biohybrid.__file__;"
        "print(sorted(r.bundled_scenarios())[:50]); print(sorted(r.available_models()))"
    )
    p = subprocess.run(
        [sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 0, p.stderr
    assert "'demo'" in p.stdout.splitlines()[0]
    assert "'demo'" in p.stdout.splitlines()[1]
