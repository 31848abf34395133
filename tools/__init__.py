"""Development tools: benchmarks and figure scripts kept out of the installed package."""
