"""Ledger implementations behind one interface."""

from .base import Ledger, RecentStats, Update

__all__ = ["Ledger", "RecentStats", "Update"]
