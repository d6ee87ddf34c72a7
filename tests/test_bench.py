"""The bench command runs every section on both backends and reports numbers.

These are behaviour tests: the tiny sizes make every figure noise, so no
speed is asserted.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chenu_desktop import bench
from chenu_desktop.cli import main

#: Figures that may be 0 on a quiet run; every other figure must be above 0.
MAY_BE_ZERO = {"idle_cpu_percent"}


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run ``chenu-desktop bench --sizes tiny --json`` once in a subprocess.

    The Redis part starts a redis-server of its own, as a user's run does.
    """
    home = tmp_path_factory.mktemp("bench-home")
    env = dict(os.environ)
    for variable in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        env[variable] = str(home / variable.lower())
    env["QT_QPA_PLATFORM"] = "offscreen"
    env.pop("CHENU_BACKEND", None)
    completed = subprocess.run(
        [sys.executable, "-m", "chenu_desktop", "bench", "--sizes", "tiny", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_bench_reports_every_section(tiny_report: dict[str, Any], kind: str) -> None:
    sections = tiny_report["results"][kind]
    assert sorted(sections) == sorted(bench.ALL_SECTIONS)


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_bench_figures_are_positive(tiny_report: dict[str, Any], kind: str) -> None:
    for section, figures in tiny_report["results"][kind].items():
        assert figures, f"{kind} {section} has no figures"
        for name, value in figures.items():
            where = f"{kind} {section} {name} = {value!r}"
            assert isinstance(value, (int, float)), where
            assert math.isfinite(value), where
            # At tiny sizes a latency can round to 0 on a busy machine.
            assert value >= 0, where
        positive = [n for n, v in figures.items() if v > 0 and n not in MAY_BE_ZERO]
        assert positive, f"{kind} {section} measured nothing: {figures}"


def test_bench_compares_every_target(tiny_report: dict[str, Any]) -> None:
    checked = {
        (row["backend"], row["section"], row["figure"])
        for row in tiny_report["targets"]
    }
    for section, figure, _, _ in bench.TARGETS:
        # Celery is compared on Redis only.
        kinds = ["redis"] if figure.startswith("celery_") else ["sqlite", "redis"]
        for kind in kinds:
            assert (kind, section, figure) in checked
    assert ("sqlite", "end_to_end", "celery_ratio") not in checked


def test_bench_compares_celery_on_redis(tiny_report: dict[str, Any]) -> None:
    redis_figures = tiny_report["results"]["redis"]["end_to_end"]
    sqlite_figures = tiny_report["results"]["sqlite"]["end_to_end"]
    assert redis_figures["celery_tasks_per_s"] > 0
    assert redis_figures["celery_submit_p99_ms"] > 0
    assert redis_figures["celery_ratio"] == pytest.approx(
        redis_figures["engine_tasks_per_s"] / redis_figures["celery_tasks_per_s"]
    )
    assert "celery_tasks_per_s" not in sqlite_figures


def test_bench_without_celery(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    redis_url: str,
) -> None:
    # None in sys.modules makes the import raise ImportError, as if not installed.
    monkeypatch.setitem(sys.modules, "chenu_desktop.bench_celery", None)
    backend = bench.Backend("redis", tmp_path, redis_url)
    assert bench.celery_available(backend) is False
    assert "pip install 'chenu-desktop[bench]'" in caplog.text


def test_bench_describes_machine(tiny_report: dict[str, Any]) -> None:
    machine = tiny_report["machine"]
    assert machine["cores"] >= 1
    assert machine["cpu"]
    assert machine["huey"]
    # Celery comes with the test extra.
    assert machine["celery"]
    assert machine["redis_server"]
    assert tiny_report["command"] == "chenu-desktop bench --json --sizes tiny"
    assert tiny_report["date"]


def test_bench_table_lists_figures(tiny_report: dict[str, Any]) -> None:
    text = bench.format_report(tiny_report)
    assert "SQLITE" in text
    assert "REDIS" in text
    assert "engine_tasks_per_s" in text
    assert "redis-server" in text


def test_bench_without_redis_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    status = main(["bench", "--backend-kind", "redis", "--sizes", "tiny"])
    assert status == 2
    assert "redis-server not found on PATH" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("url", "status", "message"),
    [
        ("notaurl", 2, "invalid --redis-url 'notaurl': it is not a Redis URL"),
        ("sqlite:///tmp/x.db", 2, "it is not a Redis URL; give redis://HOST:PORT/DB"),
        ("", 2, "invalid --redis-url: empty backend URL"),
        # Port 1 on loopback: nothing listens there.
        ("redis://127.0.0.1:1/0", 1, "Redis at redis://127.0.0.1:1/0 is unavailable"),
        (
            "redis+sentinel://127.0.0.1:1/svc",
            1,
            "no sentinel named a master for the service",
        ),
    ],
)
def test_bench_rejects_bad_redis_url(
    capsys: pytest.CaptureFixture[str], url: str, status: int, message: str
) -> None:
    code = main(
        ["bench", "--backend-kind", "redis", "--sizes", "tiny", "--redis-url", url]
    )
    error = capsys.readouterr().err
    assert code == status
    assert message in error
    assert "Traceback" not in error
    assert len(error.splitlines()) == 1


def test_bench_rejects_unknown_section(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["bench", "--backend-kind", "sqlite", "--sections", "nope"])
    assert status == 2
    assert "unknown section 'nope'" in capsys.readouterr().err


def test_bench_celery_failure_left_out(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    redis_url: str,
) -> None:
    from chenu_desktop import bench_celery

    def fail(*args: Any) -> None:
        raise bench_celery.CeleryError("the Celery worker exited with code 1")

    monkeypatch.setattr(bench_celery, "celery_end_to_end", fail)
    backend = bench.Backend("redis", tmp_path, redis_url)
    assert bench.celery_round(backend, 5) is None
    assert "the Celery comparison failed" in caplog.text
    assert "exited with code 1" in caplog.text
