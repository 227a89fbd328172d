"""What a node does: the services the runtime constructs once (never imports the adapters)."""
