"""Tests of p2p/: the libp2p host, bitswap, gossip and creator repos, in one process."""
