"""One-terminal demo: the aggregator, then both rental services a moment later.

Run: poetry run python demo.py   (or: make demo)
"""

import sys

try:
    from common.demo import demo_main
except KeyboardInterrupt:  # Ctrl+C while the libraries load
    sys.exit(130)

if __name__ == "__main__":
    sys.exit(demo_main())
