"""Run the command line as ``python -m chenu_desktop``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
