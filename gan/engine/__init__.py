"""The engine: config, data, models, losses, the training step and Trainer, history, checkpoints, autosave,
and the worker process with its typed protocol. Imports nothing from quality, viz, workshop or tools."""
