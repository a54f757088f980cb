"""The competing IMP methods, one file each (installed as `infcop.baselines`).

A file registers one method with `@register_method` (see infcop/methods/registry.py): a pruner, a
reset and a stopping rule, and the role, schedule and hyperparameters the statistics need. Adding a
baseline is one more file here, or, for an installed harness, a file in your study's own
`baselines/` folder or a package with an `infcop.methods` entry point (README, "Adding a baseline").
"""
