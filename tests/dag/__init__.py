"""Tests of dag/: CIDs, codecs, UnixFS, CAR, the flat-file blockstore, GC."""
