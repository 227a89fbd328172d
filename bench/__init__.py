"""Benchmarks. Each runs as a module from the repository root, e.g.
``.venv/bin/python -m bench.add --help``, and imports the test harness (``tests.harness``)
directly."""
