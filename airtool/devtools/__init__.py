"""Developer tools: docs generation and measurement scripts (run with python -m)."""
