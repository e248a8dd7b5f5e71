"""Evaluation from inside a training loop: `GenvalCallback`, a transformers TrainerCallback (needs `accelerate`,
as the Trainer does: pip install 'genval[training]')."""

from genval.training.callback import GenvalCallback

__all__ = ["GenvalCallback"]
