"""Competing IMP methods, one module each; importing the package registers them all."""
from baselines import early_bird, finetune, gradual_magnitude, lrr, lth, random_pruning, sap, wr  # noqa: F401
