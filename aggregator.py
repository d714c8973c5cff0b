"""Aggregator: broadcast QTY, gather every rental's cars, show the best offer.

Run: poetry run python aggregator.py [--expect N] [--timeout SECONDS] [--json]
"""

import sys

try:
    from common.apps import aggregator_main
except KeyboardInterrupt:  # Ctrl+C while the libraries load
    sys.exit(130)

if __name__ == "__main__":
    sys.exit(aggregator_main())
