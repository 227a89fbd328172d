"""Tests of webui/: the pages, login, the path gateway and its limits."""
