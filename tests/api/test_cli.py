"""The silverflow command: real runs against a SQLite file; bad input is one line and exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from api.cli import main

ROOT = Path(__file__).parents[2]
REFERENCE = ROOT / "bench" / "bpmn" / "reference.bpmn"


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["--database-url", url, "migrate"]) == 0
    return url


def test_deploy_and_run_instance(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--database-url", db, "deploy", str(REFERENCE), "--user", "designer"]) == 0
    assert "deployed: reference version 1" in capsys.readouterr().out
    assert main(["--database-url", db, "deploy", str(REFERENCE)]) == 0
    assert "unchanged: reference version 1" in capsys.readouterr().out
    assert main(["--database-url", db, "run-instance", "reference", "--var", "amount=60",
                 "--business-key", "K1"]) == 0
    out = capsys.readouterr().out
    assert "running" in out and "open task" in out and '"total": 120' in out


def test_demo_data_deploys_shipped_processes(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--database-url", db, "demo-data"]) == 0


@pytest.mark.parametrize("argv, message", [
    (["deploy", "/no/such/file.bpmn"], "no such file"),
    (["deploy", str(ROOT / "pyproject.toml")], "expected a .bpmn or .dmn file"),
    (["run-instance", "unknown-process"], "not deployed"),
    (["run-instance", "x", "--var", "novalue"], "name=value"),
])
def test_bad_input_is_one_line_and_exit_2(db: str, argv: list[str], message: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--database-url", db, *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_invalid_bpmn_is_refused_with_problems(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.bpmn"
    broken.write_text(REFERENCE.read_text().replace("total = amount * 2", "import os"))
    assert main(["--database-url", db, "deploy", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "deploy refused" in err and "compute" in err and "import" in err


def test_console_script_entry_point(db: str) -> None:
    result = subprocess.run([sys.executable, "-m", "api.cli", "--database-url", db, "run-instance", "nope"],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
