"""Large arguments and results: cut with their size in lists, whole in details."""

from __future__ import annotations

import json

import pytest
from cli_helpers import run_cli, run_json

from chenu_desktop import TaskQueue, background_task
from chenu_desktop.backend import sqlite_url
from chenu_desktop.preview import cut_text, format_size, json_preview

#: A string argument that makes the arguments about 1000 KiB of JSON, under
#: the default max_argument_bytes of 1 MiB.
LARGE = "données " * 115_000


@background_task(name="preview_echo", queue=TaskQueue.DEFAULT)
def echo(payload: str) -> str:
    return payload


def test_cut_text_short_unchanged() -> None:
    assert cut_text("abc", 3) == "abc"
    assert json_preview({"a": 1}) == '{"a": 1}'


def test_cut_text_states_size() -> None:
    text = "é" * 600_000

    preview = cut_text(text, 10)

    assert preview == "éééééééééé… (truncated, 1.1 MiB in all)"


def test_json_preview_one_line() -> None:
    preview = json_preview({"text": "line one\nline two\n" * 50}, 40)

    assert "\n" not in preview
    assert preview.startswith('{"text": "line one\\nline two\\n')
    assert preview.endswith("(truncated, 1012 B in all)")


@pytest.mark.parametrize(
    "size, expected",
    [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1024 * 1024, "1.0 MiB")],
)
def test_format_size_units(size: int, expected: str) -> None:
    assert format_size(size) == expected


def test_cli_list_cuts_show_whole(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    backend = sqlite_url(tmp_path / "chenu.db")
    document = run_json(
        capsys, "--backend", backend, "tasks", "submit", "preview_echo",
        f"payload={LARGE}",
    )  # fmt: skip
    task_id = document["task_id"]
    whole = json.dumps({"payload": LARGE}, ensure_ascii=False)
    size = format_size(len(json.dumps({"payload": LARGE}, ensure_ascii=False,
                                      separators=(", ", ": ")).encode()))  # fmt: skip

    code, out, err = run_cli(capsys, "--backend", backend, "tasks", "list")
    assert code == 0, err
    row = out.splitlines()[1]
    assert len(row) < 400
    assert '{"payload": "données données' in row
    assert f"(truncated, {size} in all)" in row
    assert size == "1010.8 KiB"

    code, out, err = run_cli(capsys, "--backend", backend, "tasks", "show", task_id)
    assert code == 0, err
    assert f"kwargs: {whole}" in out.splitlines()
    listed = run_json(capsys, "--backend", backend, "tasks", "list")
    assert listed["tasks"][0]["kwargs"] == {"payload": LARGE}
