"""Shared fixtures: the real IPFS peers (``js_ipfs``, ``kubo``) from tests/ipfs_peers.py."""

from tests.ipfs_peers import js_ipfs, kubo  # noqa: F401
