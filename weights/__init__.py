"""Shipped weights (package data); see README.md in this folder."""
