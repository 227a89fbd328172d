"""Local pins: why each exists, the pinning policies and garbage collection."""
