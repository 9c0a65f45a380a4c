"""The run (layer 2 of 8; tests/test_layers.py): history, the state machine and its argument checks (control), the
threaded trainer, the Run protocols and the status vocabulary. Imports only gan.core."""
