"""Tests of activitypub_bridge/: documents, HTTP signatures, the inbox, delivery, SSRF guards."""
