"""python -m fmnist.checkpoints card|push|convert|refit-detector|gallery (fmnist.checkpoints.cli)."""

import sys

from fmnist.checkpoints.cli import main

if __name__ == "__main__":
    sys.exit(main())
