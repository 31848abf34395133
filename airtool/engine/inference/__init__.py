"""Running a network on pictures: loading, tiling, the batch pipeline over files, video, benchmarks."""
