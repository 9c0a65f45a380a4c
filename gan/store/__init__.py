"""Persistence (layer 3 of 8; tests/test_layers.py): checkpoints, autosaves and atomic writes. Imports gan.core and
gan.engine only."""
