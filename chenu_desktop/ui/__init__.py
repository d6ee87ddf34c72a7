"""The desktop window: Qt widgets and models over the engine (PySide6)."""
