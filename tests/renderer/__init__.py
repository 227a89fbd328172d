"""Tests of renderer/: recipes, effects, the ffmpeg sandbox, fingerprints, the render
market's pure core."""
