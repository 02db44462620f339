"""The ``docker_engine`` fixture: a Docker engine that answers, started only if none does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sconify.dev.engine import EngineHandle, ensure_engine


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineHandle]:
    """The engine handle; a ``dockerd`` started here is stopped at the end of the session."""
    handle = ensure_engine(log_dir=tmp_path_factory.mktemp("dockerd"))
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def docker_client(docker_engine: EngineHandle) -> Iterator[Any]:
    """A ``docker.DockerClient`` on the engine."""
    client = docker_engine.client()
    yield client
    client.close()
