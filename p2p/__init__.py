"""Peer-to-peer networking: libp2p host, discovery, signed gossip, bitswap, creator repo sync."""
