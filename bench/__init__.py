"""Benchmark harness (issue 6): `python -m bench` (full) or `python -m bench --quick` (CI smoke run)."""

# The bench-only trivial JSON route that bench/trivial_app.py adds to the product app.
TRIVIAL_PATH = "/bench/trivial"
# A bench-only route that only calls the upstream (see bench/trivial_app.py).
PASSTHROUGH_PATH = "/bench/upstream"
