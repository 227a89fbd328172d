"""Rendering recipes for this node: locally, or through the market."""
