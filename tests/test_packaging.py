"""What an installed app needs: packages, data files, launcher, desktop entry, log file."""

from __future__ import annotations

import logging
import logging.handlers
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from chenu_desktop import __version__, desktop_entry, logs
from chenu_desktop.cli import main
from chenu_desktop.errors import ConfigurationError
from chenu_desktop.resource_files import ICON_SIZES, desktop_entry_template, icon_svg

ROOT = Path(__file__).resolve().parent.parent


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_every_package_is_listed_for_setuptools() -> None:
    found = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "chenu_desktop").rglob("__init__.py")
    }
    found.add("chenu_desktop.resources")
    listed = set(_project()["tool"]["setuptools"]["packages"])
    assert listed == found


def test_launcher_entry_points() -> None:
    project = _project()["project"]
    assert project["gui-scripts"] == {"chenu-desktop": "chenu_desktop.cli:main"}
    assert project["scripts"] == {"chenu-desktop-cli": "chenu_desktop.cli:main"}


def test_version_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"chenu-desktop {__version__}"


@pytest.mark.slow
def test_wheel_data_files_outside_tree(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("chenu_desktop-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        points = archive.read(entry_points).decode()
    assert "chenu_desktop/resources/__init__.py" in names
    assert "chenu_desktop/resources/icons/chenu-desktop.svg" in names
    assert "chenu_desktop/resources/chenu-desktop.desktop" in names
    # Screenshots and the bundle's spec stay in the source tree.
    assert not [n for n in names if "screenshots" in n or n.endswith(".spec")]
    assert "[gui_scripts]\nchenu-desktop = chenu_desktop.cli:main" in points

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
         str(target), str(wheel)],
        check=True,
        timeout=300,
    )  # fmt: skip
    probe = (
        "import chenu_desktop, sys\n"
        "from chenu_desktop.resource_files import icon_svg, desktop_entry_template\n"
        "print(chenu_desktop.__file__)\n"
        "print(len(icon_svg()), 'Exec=' in desktop_entry_template())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    module_file, sizes = result.stdout.splitlines()
    assert Path(module_file).is_relative_to(target)
    assert sizes == f"{len(icon_svg())} True"


def test_desktop_entry_install_and_remove(tmp_path: Path, qapp) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtGui import QImage

    home = Path(os.environ["XDG_DATA_HOME"])
    assert main(["desktop-entry", "install"]) == 0
    entry = home / "applications" / "chenu-desktop.desktop"
    text = entry.read_text(encoding="utf-8")
    exec_lines = [line for line in text.splitlines() if line.startswith("Exec=")]
    launcher = desktop_entry.launcher_command()
    assert exec_lines == [f"Exec={desktop_entry.exec_line(launcher)}"]
    assert os.path.isabs(launcher[0])
    assert "Icon=chenu-desktop" in text.splitlines()
    for size in ICON_SIZES:
        image = QImage(
            str(home / f"icons/hicolor/{size}x{size}/apps/chenu-desktop.png")
        )
        assert (image.width(), image.height()) == (size, size)
        # The corners are transparent and the middle is drawn.
        assert image.pixelColor(0, 0).alpha() == 0
        assert image.pixelColor(size // 2, size // 2).alpha() == 255
    svg = home / "icons/hicolor/scalable/apps/chenu-desktop.svg"
    assert svg.read_bytes() == icon_svg()
    validator = shutil.which("desktop-file-validate")
    if validator is None:
        pytest.skip(
            "desktop-file-validate (Debian's desktop-file-utils) is not installed"
        )
    check = subprocess.run([validator, str(entry)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr

    assert main(["desktop-entry", "remove"]) == 0
    assert not entry.exists()
    assert not list((home / "icons").rglob("chenu-desktop.*"))


def test_desktop_entry_custom_launcher(capsys: pytest.CaptureFixture[str]) -> None:
    home = Path(os.environ["XDG_DATA_HOME"])
    assert (
        main(
            ["desktop-entry", "install", "--launcher", "'/opt/my apps/run' --minimized"]
        )
        == 0
    )
    text = (home / "applications" / "chenu-desktop.desktop").read_text(encoding="utf-8")
    assert 'Exec="/opt/my apps/run" --minimized' in text.splitlines()
    capsys.readouterr()
    assert main(["desktop-entry", "install", "--launcher", "chenu-desktop"]) == 2
    error = capsys.readouterr().err
    assert "'chenu-desktop' does not start with an absolute path" in error


@pytest.mark.parametrize(
    ("argument", "quoted"),
    [
        ("/usr/bin/chenu-desktop", "/usr/bin/chenu-desktop"),
        ("/opt/a b/run", '"/opt/a b/run"'),
        ('/opt/say "hi"/run', '"/opt/say \\"hi\\"/run"'),
        ("/opt/$HOME/run", '"/opt/\\$HOME/run"'),
        ("/opt/100%/run", "/opt/100%%/run"),
    ],
)
def test_exec_argument_quoting(argument: str, quoted: str) -> None:
    assert desktop_entry.quote_exec_argument(argument) == quoted


def test_exec_line_rejects_line_breaks() -> None:
    with pytest.raises(ConfigurationError, match="line break"):
        desktop_entry.quote_exec_argument("/opt/a\nb")


def test_shipped_entry_names_the_icon_and_launcher() -> None:
    lines = desktop_entry_template().splitlines()
    assert lines[0] == "[Desktop Entry]"
    assert "Exec=chenu-desktop" in lines
    assert "Icon=chenu-desktop" in lines


def test_log_file_masks_passwords_and_rotates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "MAX_LOG_BYTES", 4000)
    log = logging.getLogger("chenu.test")
    with logs.file_logging(tmp_path / "logs") as path:
        assert path == tmp_path / "logs" / logs.LOG_FILE_NAME
        log.info("connecting to %s", "redis://:hunter2@127.0.0.1:6390/0")
        first = path.read_text(encoding="utf-8")
        for n in range(200):
            log.info("filler line %d %s", n, "x" * 40)
    assert "hunter2" not in first
    assert "redis://:***@127.0.0.1:6390/0" in first
    rotated = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert rotated[0] == logs.LOG_FILE_NAME
    assert len(rotated) == 1 + logs.BACKUP_COUNT
    # The handler left with the block.
    assert not any(
        isinstance(h, logging.handlers.RotatingFileHandler)
        for h in logging.getLogger().handlers
    )


def test_mask_passwords_leaves_other_text() -> None:
    assert (
        logs.mask_passwords("see redis://user:pw@h:1/0 now")
        == "see redis://user:***@h:1/0 now"
    )
    assert logs.mask_passwords("sqlite:///tmp/a.db") == "sqlite:///tmp/a.db"
