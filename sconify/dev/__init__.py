"""Local development services: the Docker engine and a registry, started only when missing."""
