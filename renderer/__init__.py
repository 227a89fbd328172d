"""Rendering: effects and recipes as records, a planner with step cache ids, and a
sandboxed ffmpeg executor."""
