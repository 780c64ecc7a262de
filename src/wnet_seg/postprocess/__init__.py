"""Fully connected CRF post-processing."""
