"""Reference transcriptions of the authors' code, imported only by the tests (not shipped, not tools)."""
