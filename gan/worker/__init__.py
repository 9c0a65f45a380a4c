"""The training process (layer 4 of 8; tests/test_layers.py): its loop (process), its wire messages, the server's
client and the run's mirror there (remote), and the heap keeper. Imports gan.core, gan.engine and gan.store."""
