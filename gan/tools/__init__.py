"""Tools around the app: the CLI (python -m gan), the benchmark and the simulated websocket viewers.
They drive everything below them; nothing below imports them."""
