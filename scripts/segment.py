"""Same app as the `wnet-seg-segment` console script: `python scripts/segment.py key=value ...`."""

from wnet_seg.segment import main

if __name__ == "__main__":
    main()
