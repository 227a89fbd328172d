"""The real IPFS peers, one of each per session (tests/harness/ipfs_peers.py)."""

from tests.harness.ipfs_peers import js_ipfs, kubo

__all__ = ["js_ipfs", "kubo"]
