"""What every bench module shares: the repository root (REPO), the tiny config of --quick (TINY), log().
Must not import another bench module (each of them imports this one) nor start or measure anything."""

import sys
from pathlib import Path

# gan/tools/bench/common.py -> the repository: parents are bench, tools, gan, then the root (app.py).
REPO = Path(__file__).resolve().parents[3]
TINY = {"model": "mlp", "width": 16, "batch_size": 16, "latent_dim": 16}  # for --quick and the rss part


def log(msg: str) -> None:
    """Progress on stderr, so stdout keeps only the table and the JSON line."""
    print(msg, file=sys.stderr, flush=True)
