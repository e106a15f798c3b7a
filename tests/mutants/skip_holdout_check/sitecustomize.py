"""Mutant: the trainer registers and swaps to every retrained candidate, skipping the held-out check."""

from sut.trainer.retrain import Evaluation

Evaluation.better = property(lambda self: True)
