"""Same app as the `wnet-seg-evaluate` console script: `python scripts/evaluate.py key=value ...`."""

from wnet_seg.evaluate import main

if __name__ == "__main__":
    main()
