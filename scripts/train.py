"""Same app as the `wnet-seg-train` console script: `python scripts/train.py key=value ...`."""

from wnet_seg.train import cli

if __name__ == "__main__":
    cli()
