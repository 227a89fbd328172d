"""Tests of daemon/: the CLI, the JSON API, services and one real daemon at a time."""
