"""What the tests and benchmarks share: daemon processes, generated media, real peers,
wire helpers."""
