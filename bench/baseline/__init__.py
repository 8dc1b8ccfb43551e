"""Bench-only Django app: the baseline of ``bench/payments.py``, a bare authenticated DRF POST that inserts
one row. Installed only by the bench settings module :mod:`bench.baseline.settings`, never in the product."""
