"""Figures about the node: the status summary and Prometheus metrics."""
