import sys

from gan.tools.cli import main

if __name__ == "__main__":  # guarded: the training worker is spawned, and spawn imports the main module
    sys.exit(main())
