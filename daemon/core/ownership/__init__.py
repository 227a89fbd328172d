"""Claims, disputes and OpenTimestamps anchors of this node's records."""
