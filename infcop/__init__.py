"""InfCoP harness: iterative magnitude pruning with information-consistent early
stopping, benchmarked."""

__version__ = "0.1.0"
