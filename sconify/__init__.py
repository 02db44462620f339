"""sconify: turn native container images into attested, encrypted images (simulation mode)."""

__version__ = "0.1.0"
