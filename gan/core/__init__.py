"""The maths (layer 1 of 8; tests/test_layers.py): config, data, models, losses, the training step, the live
vocabulary and the coach. Imports no other gan package."""
