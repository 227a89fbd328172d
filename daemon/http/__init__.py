"""The HTTP adapters: Quart routes that parse a request, call a service, serialise."""
