"""shrink: make partial pooling in mixed-effects models visible."""

__version__ = "0.1.0"
