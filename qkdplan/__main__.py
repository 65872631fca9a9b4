"""``python -m qkdplan``: the command-line interface (same as the ``qkdplan`` command)."""

from __future__ import annotations

import sys

from qkdplan.cli import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
