"""The papers' evaluation protocols: pairs, synthetic noise streams, scores."""
