"""One-terminal demo: the aggregator, then both rental services a moment later.

Run: poetry run python demo.py   (or: make demo)
"""

import sys

from common.demo import demo_main

if __name__ == "__main__":
    sys.exit(demo_main())
