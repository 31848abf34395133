"""Image files, paths and tiling."""
