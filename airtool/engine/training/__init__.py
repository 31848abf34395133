"""Training runs: configuration, data, losses, optimiser, checkpoints, export, DDP and the campaign."""
