"""Packages: content-addressed blobs with HTTP Range, their catalog entries, image metadata."""
