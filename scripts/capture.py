"""Same as the ``wnet-seg-capture`` console script: ``python scripts/capture.py crafter --out DIR``."""

import sys

from wnet_seg.capture.cli import main

if __name__ == "__main__":
    sys.exit(main())
