"""The node API: what a node can do, in-process or over HTTP to a running daemon."""
