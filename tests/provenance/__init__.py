"""Tests of provenance/: identities, signed records, schemas, claims, splits, anchoring,
settlement, the graph."""
