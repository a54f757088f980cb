"""The bottom layer: the config dataclasses, artifact paths, atomic storage, provenance and the
generated config schema. Nothing here knows a dataset, model, method or the engine."""
