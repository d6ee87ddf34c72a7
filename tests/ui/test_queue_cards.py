"""Tests of the queue card strip, its cards and the throughput chart."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QLabel

from chenu_desktop import TaskQueue, TaskStatus, background_task
from chenu_desktop.engine import Engine
from chenu_desktop.models import QueueStats
from chenu_desktop.ui.background import BackgroundRunner
from chenu_desktop.ui.feed import EngineFeed
from chenu_desktop.ui.queue_cards import QueueCardStrip
from chenu_desktop.ui.sparkline import ThroughputChart
from chenu_desktop.ui.style import QUEUE_ORDER

from engine_helpers import wait_final


@background_task(name="qc_echo", queue=TaskQueue.DEFAULT)
def qc_echo(value: int = 0) -> int:
    return value


@background_task(name="qc_fail", queue=TaskQueue.DEFAULT)
def qc_fail() -> None:
    raise ValueError("planned failure")


def make_stats(queue: TaskQueue, **overrides: object) -> QueueStats:
    values: dict[str, object] = {
        "queue": queue,
        "counts": {
            TaskStatus.PENDING: 4,
            TaskStatus.SCHEDULED: 2,
            TaskStatus.RUNNING: 1,
        },
        "succeeded_last_hour": 30,
        "failed_last_hour": 3,
        "throughput_per_minute": [0, 1, 5, 9, 2, 0, 4],
        "mean_duration": 1.5,
        "p95_duration": 3.0,
        "oldest_waiting_age": 125.0,
        "workers_busy": 1,
        "workers_total": 2,
        "paused": False,
    }
    values.update(overrides)
    return QueueStats(**values)  # type: ignore[arg-type]


@pytest.fixture
def strip(qtbot) -> QueueCardStrip:  # type: ignore[no-untyped-def]
    widget = QueueCardStrip()
    qtbot.addWidget(widget)
    widget.resize(1200, 220)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


@pytest.fixture
def feed(ui_engine: Engine, runner: BackgroundRunner) -> Iterator[EngineFeed]:
    engine_feed = EngineFeed(ui_engine, runner, stats_interval_ms=100)
    try:
        yield engine_feed
    finally:
        engine_feed.stop()


def test_cards_follow_queue_order(strip: QueueCardStrip) -> None:
    queues = [card.queue for card in strip.cards()]
    assert queues == list(QUEUE_ORDER)
    assert queues[0] is TaskQueue.GOVERNANCE


def test_governance_card_set_apart(strip: QueueCardStrip) -> None:
    governance = strip.card(TaskQueue.GOVERNANCE)
    default = strip.card(TaskQueue.DEFAULT)
    assert governance.findChild(object, "governance_icon") is not None
    assert default.findChild(object, "governance_icon") is None
    assert "Governance" in governance.accessibleDescription()

    image = governance.grab().toImage()
    stripe = QColor(image.pixel(2, image.height() // 2))
    assert stripe.red() > stripe.blue() + 60  # The amber accent stripe.


def test_cards_have_accessible_names(strip: QueueCardStrip) -> None:
    names = [card.accessibleName() for card in strip.cards()]
    assert names == [f"{queue.value.capitalize()} queue" for queue in QUEUE_ORDER]
    for card in strip.cards():
        assert card.focusPolicy() == Qt.FocusPolicy.StrongFocus


def test_card_shows_given_figures(strip: QueueCardStrip) -> None:
    strip.update_stats({TaskQueue.HIGH: make_stats(TaskQueue.HIGH)})
    card = strip.card(TaskQueue.HIGH)
    assert card.figure_text("pending") == "4"
    assert card.figure_text("scheduled") == "2"
    assert card.figure_text("running") == "1"
    assert card.figure_text("succeeded") == "30"
    assert card.figure_text("failed") == "3"
    assert card.figure_text("workers") == "1/2"
    assert card.figure_text("mean_duration") == "1.5 s"
    assert card.figure_text("oldest_waiting") == "2 min 05 s"
    throughput = card.findChild(object, "throughput_value").text()
    assert throughput == "17 in 6 min · this minute so far: 4"
    assert card.chart().values() == [0, 1, 5, 9, 2, 0, 4]


def test_card_without_durations_shows_dash(strip: QueueCardStrip) -> None:
    stats = make_stats(TaskQueue.LOW, mean_duration=None, oldest_waiting_age=None)
    strip.update_stats({TaskQueue.LOW: stats})
    card = strip.card(TaskQueue.LOW)
    assert card.figure_text("mean_duration") == "–"
    assert card.figure_text("oldest_waiting") == "–"


def test_paused_badge_follows_stats(strip: QueueCardStrip) -> None:
    card = strip.card(TaskQueue.LOW)
    badge = card.findChild(object, "paused_badge")
    assert not badge.isVisible()
    strip.update_stats({TaskQueue.LOW: make_stats(TaskQueue.LOW, paused=True)})
    assert badge.isVisible()
    assert "paused" in card.accessibleDescription()
    strip.update_stats({TaskQueue.LOW: make_stats(TaskQueue.LOW, paused=False)})
    assert not badge.isVisible()


def test_click_selects_then_clears(qtbot, strip: QueueCardStrip) -> None:  # type: ignore[no-untyped-def]
    card = strip.card(TaskQueue.HIGH)
    with qtbot.waitSignal(strip.queue_clicked) as first:
        qtbot.mouseClick(card, Qt.MouseButton.LeftButton)
    assert first.args == [TaskQueue.HIGH]
    assert strip.selected_queue() is TaskQueue.HIGH
    assert card.is_selected()

    with qtbot.waitSignal(strip.queue_clicked) as second:
        qtbot.mouseClick(card, Qt.MouseButton.LeftButton)
    assert second.args == [None]
    assert strip.selected_queue() is None
    assert not card.is_selected()


def test_click_other_card_moves_selection(qtbot, strip: QueueCardStrip) -> None:  # type: ignore[no-untyped-def]
    qtbot.mouseClick(strip.card(TaskQueue.HIGH), Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(strip.queue_clicked) as blocker:
        qtbot.mouseClick(strip.card(TaskQueue.LOW), Qt.MouseButton.LeftButton)
    assert blocker.args == [TaskQueue.LOW]
    assert not strip.card(TaskQueue.HIGH).is_selected()
    assert strip.card(TaskQueue.LOW).is_selected()


@pytest.mark.parametrize("key", [Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space])
def test_keyboard_activates_card(qtbot, strip: QueueCardStrip, key: Qt.Key) -> None:  # type: ignore[no-untyped-def]
    card = strip.card(TaskQueue.GOVERNANCE)
    with qtbot.waitSignal(strip.queue_clicked) as blocker:
        qtbot.keyClick(card, key)
    assert blocker.args == [TaskQueue.GOVERNANCE]


def test_arrow_keys_move_focus(qtbot, strip: QueueCardStrip) -> None:  # type: ignore[no-untyped-def]
    cards = strip.cards()
    cards[0].setFocus()
    qtbot.waitUntil(cards[0].hasFocus)
    qtbot.keyClick(cards[0], Qt.Key.Key_Right)
    assert cards[1].hasFocus()
    qtbot.keyClick(cards[1], Qt.Key.Key_Left)
    assert cards[0].hasFocus()
    qtbot.keyClick(cards[0], Qt.Key.Key_Left)
    assert cards[0].hasFocus()  # The first card keeps the focus.
    cards[-1].setFocus()
    qtbot.keyClick(cards[-1], Qt.Key.Key_Right)
    assert cards[-1].hasFocus()


def test_set_selected_queue_emits_nothing(qtbot, strip: QueueCardStrip) -> None:  # type: ignore[no-untyped-def]
    with qtbot.assertNotEmitted(strip.queue_clicked):
        strip.set_selected_queue(TaskQueue.DEFAULT)
    assert strip.card(TaskQueue.DEFAULT).is_selected()
    assert "selected" in strip.card(TaskQueue.DEFAULT).accessibleDescription()

    # A click on the card selected from outside clears it.
    with qtbot.waitSignal(strip.queue_clicked) as blocker:
        qtbot.mouseClick(strip.card(TaskQueue.DEFAULT), Qt.MouseButton.LeftButton)
    assert blocker.args == [None]

    strip.set_selected_queue(TaskQueue.LOW)
    strip.set_selected_queue(None)
    assert not any(card.is_selected() for card in strip.cards())


def test_chart_paints_bars(qtbot) -> None:  # type: ignore[no-untyped-def]
    chart = ThroughputChart()
    qtbot.addWidget(chart)
    chart.resize(150, 40)
    chart.set_bar_color(QColor("#ff0000"))
    chart.set_values([0, 0, 10, 0, 5])

    image: QImage = chart.grab().toImage()
    slot = image.width() / 5

    def has_red(column: int) -> bool:
        return any(
            QColor(image.pixel(column, y)).red() > 200
            and QColor(image.pixel(column, y)).green() < 80
            for y in range(image.height())
        )

    assert not has_red(int(slot * 0.5))  # Minute with no work: no bar.
    assert has_red(int(slot * 2.5))  # The tallest full minute.
    top_pixel = QColor(image.pixel(int(slot * 2.5), 3))
    assert top_pixel.red() > 200  # It reaches the top.
    assert "still counting: 5" in chart.toolTip()


def test_chart_paints_partial_minute_hollow(qtbot) -> None:  # type: ignore[no-untyped-def]
    chart = ThroughputChart()
    qtbot.addWidget(chart)
    chart.resize(100, 40)
    chart.set_bar_color(QColor("#0000ff"))
    chart.set_values([10, 10])

    image = chart.grab().toImage()
    middle_y = image.height() // 2
    full = QColor(image.pixel(image.width() // 4, middle_y))
    partial = QColor(image.pixel(image.width() * 3 // 4, middle_y))
    assert full.blue() > 200
    assert full.red() < 50
    assert partial.red() > 100  # Mostly background shows through the hollow bar.


def test_cards_show_engine_stats(  # type: ignore[no-untyped-def]
    qtbot, strip: QueueCardStrip, ui_engine: Engine, feed: EngineFeed
) -> None:
    service = ui_engine.task_service
    succeeded = [service.submit("qc_echo", value=n) for n in range(3)]
    failed = service.submit("qc_fail")
    for task_id in [*succeeded, failed]:
        wait_final(ui_engine, task_id)

    feed.stats_updated.connect(strip.update_stats)
    feed.start()
    card = strip.card(TaskQueue.DEFAULT)
    qtbot.waitUntil(lambda: card.figure_text("succeeded") == "3", timeout=5000)
    qtbot.waitUntil(lambda: card.figure_text("failed") == "1", timeout=5000)
    assert card.figure_text("pending") == "0"
    assert card.figure_text("workers") == "0/2"
    assert card.figure_text("mean_duration") != "–"
    assert sum(card.chart().values()) == 4
    assert strip.card(TaskQueue.HIGH).figure_text("succeeded") == "0"


@background_task(name="q_governed", queue=TaskQueue.GOVERNANCE, requires_governance=True)
def queue_governed(amount: int, approved_by: str) -> int:
    return amount


def test_governance_card_counts_awaiting(qtbot, ui_engine) -> None:  # type: ignore[no-untyped-def]
    strip = QueueCardStrip()
    qtbot.addWidget(strip)
    ui_engine.task_service.submit("q_governed", amount=1)
    strip.update_stats(ui_engine.task_service.queue_stats())
    awaiting = strip.card(TaskQueue.GOVERNANCE).findChild(QLabel, "awaiting_value")
    assert awaiting is not None
    assert awaiting.text() == "1"
    assert strip.card(TaskQueue.DEFAULT).findChild(QLabel, "awaiting_value") is None
