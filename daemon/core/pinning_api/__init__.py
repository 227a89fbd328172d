"""The IPFS Pinning Service API: tokens, pin requests and their worker."""
