"""Hydra configuration tree of wnet-seg (also reachable as conf/ at the repository root)."""
