"""The bundle's entry script: the ``chenu-desktop`` command line, as installed."""

import multiprocessing
import sys

from chenu_desktop.cli import main

if __name__ == "__main__":
    # The bench starts helper processes; a frozen program must hand them over.
    multiprocessing.freeze_support()
    sys.exit(main())
