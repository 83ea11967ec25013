"""Offline packages: bundles issued ahead for cars at a dealer, single use, use reported."""
