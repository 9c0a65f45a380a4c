"""Quality: the reference classifier (with "not a digit"), the metrics and the monitor thread that scores a
running G. Reads the engine's public API only; draws nothing (gan.viz draws its charts)."""
