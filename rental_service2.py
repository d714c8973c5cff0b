"""Rental service for Locadora B - Aeroporto: answers the aggregator's QTY.

Run: poetry run python rental_service2.py [--once]
"""

import sys

try:
    from common.apps import rental_main
    from common.fleet import FLEETS
except KeyboardInterrupt:  # Ctrl+C while the libraries load
    sys.exit(0)

if __name__ == "__main__":
    sys.exit(rental_main(None, FLEETS / "locadora_b.json", "rental_service2.py"))
