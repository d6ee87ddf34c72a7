"""Data files of the app: the icon, the desktop entry and the bundle spec.

Installed as the ``chenu_desktop.resources`` package, so the app finds them
with `importlib.resources` after ``pip install`` and inside the bundle.
"""
