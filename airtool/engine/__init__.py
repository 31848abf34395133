"""Inference, batch processing, training and evaluation engines (import torch on use)."""
