"""srbio: paired-acquisition super-resolution for microscopy."""

__version__ = "0.1.0"
