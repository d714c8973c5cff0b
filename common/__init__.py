"""Shared code of the sports-car rental aggregator and its rental services."""
