"""python -m fmnist.tag FOLDER|FILES... --out tags.csv (fmnist.tag.cli)."""

import sys

from fmnist.tag.cli import main

if __name__ == "__main__":
    sys.exit(main())
