"""Shared fixtures: the real IPFS peers (``js_ipfs``, ``kubo``) from tests/harness/ipfs_peers.py."""

from tests.harness.ipfs_peers import js_ipfs, kubo  # noqa: F401
