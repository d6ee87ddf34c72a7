"""The dialog that requests the reason for an approval or a rejection."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)


class ReasonDialog(QDialog):
    """Asks for a reason; with `required`, OK stays disabled until one is typed."""

    def __init__(
        self,
        title: str,
        prompt: str,
        required: bool,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("reason_dialog")
        self.setWindowTitle(title)
        self._required = required
        self.prompt = QLabel(prompt, wordWrap=True)
        self.editor = QPlainTextEdit(objectName="reason_text")
        self.editor.setAccessibleName("Reason")
        self.editor.setPlaceholderText("required" if required else "optional")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.editor.textChanged.connect(self._on_text_changed)
        layout = QVBoxLayout(self)
        layout.addWidget(self.prompt)
        layout.addWidget(self.editor)
        layout.addWidget(self.buttons)
        self._on_text_changed()

    @property
    def reason(self) -> str:
        return self.editor.toPlainText().strip()

    def _on_text_changed(self) -> None:
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(bool(self.reason) or not self._required)
