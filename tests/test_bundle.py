"""The one-folder PyInstaller bundle: built from its spec, started, used, stopped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chenu_desktop import TaskStatus

from engine_helpers import open_test_engine, wait_final
from test_single_instance import AppProcess

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "resources" / "chenu-desktop.spec"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the bundle once, with the README's command, into a temporary folder."""
    out = tmp_path_factory.mktemp("bundle")
    subprocess.run(
        [sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level",
         "WARN", "--distpath", str(out / "dist"), "--workpath", str(out / "build"),
         str(SPEC)],
        cwd=ROOT,
        check=True,
        timeout=900,
    )  # fmt: skip
    executable = out / "dist" / "chenu-desktop" / "chenu-desktop"
    assert executable.is_file()
    return executable


class BundledApp(AppProcess):
    def __init__(self, executable: Path, url: str, home: Path) -> None:
        self.executable = executable
        super().__init__(url, home)

    def launcher(self) -> list[str]:
        return [str(self.executable)]

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.executable), "--backend", self.url, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_bundle_starts_runs_tasks_and_exits_cleanly(
    bundle: Path, tmp_path: Path
) -> None:
    version = subprocess.run(
        [str(bundle), "--version"], capture_output=True, text=True, timeout=120
    )
    assert version.returncode == 0
    assert version.stdout.startswith("chenu-desktop ")
    # redis-py's C parser goes in. Celery, which only the bench uses, stays out.
    internal = bundle.parent / "_internal"
    bundled = {path.name.split(".")[0] for path in internal.iterdir()}
    assert "hiredis" in bundled
    assert "celery" not in bundled

    url = f"sqlite://{(tmp_path / 'bundle.db').as_posix()}"
    app = BundledApp(bundle, url, tmp_path)
    try:
        app.wait_for("window open on")
        submitted = app.command("tasks", "submit", "cleanup_old_data", "days=999")
        assert submitted.returncode == 0, submitted.stderr
        task_id = submitted.stdout.strip()
        engine = open_test_engine(url)
        try:
            record = wait_final(engine, task_id, timeout=60)
        finally:
            engine.close()
        assert record.status is TaskStatus.SUCCESS
        # The app's own workers ran it, not the submitting command.
        assert record.worker is not None and f"-{app.process.pid}-" in record.worker
        shown = app.command("tasks", "show", task_id, "--json")
        assert json.loads(shown.stdout)["status"] == "success"

        # The icon and the desktop entry come out of the bundle's own files.
        installed = app.command("desktop-entry", "install")
        assert installed.returncode == 0, installed.stderr
        entry = (
            Path(app.env["XDG_DATA_HOME"]) / "applications" / "chenu-desktop.desktop"
        )
        assert f"Exec={bundle}" in entry.read_text(encoding="utf-8").splitlines()
        assert (
            Path(app.env["XDG_DATA_HOME"])
            / "icons/hicolor/48x48/apps/chenu-desktop.png"
        ).stat().st_size > 0

        assert app.stop() == 0
        app.wait_for("engine closed")
    finally:
        app.close()
