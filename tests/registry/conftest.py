"""Fixtures: a real registry (anonymous, Basic, Bearer) and the Docker engine."""

from tests.support.docker_engine import docker_client, docker_engine
from tests.support.registry import basic_registry, registry, token_registry

__all__ = ["basic_registry", "docker_client", "docker_engine", "registry", "token_registry"]
