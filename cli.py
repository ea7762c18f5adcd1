"""Thin shim so `python cli.py ...` works from a checkout; the real CLI is video3d.cli."""
import sys

from video3d.cli import main

if __name__ == "__main__":
    sys.exit(main())
