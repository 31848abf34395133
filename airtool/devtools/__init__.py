"""What is left of the developer tools (tile_safety.py) until it moves to tools/; not installed:
pyproject's packages leave it out, and tests/test_packaging.py checks the wheel."""
