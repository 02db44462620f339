"""End-to-end fixtures: the real engine, registry, CAS and LAS, and the native Flask sample."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Cli
from tests.support.docker_engine import docker_client, docker_engine
from tests.support.registry import Registry, registry
from tests.support.services import cas, las

__all__ = ["Cli", "cas", "docker_client", "docker_engine", "las", "registry"]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# Names in the shared Docker engine are unique to this test session, so that two sessions on one
# machine (a developer's and CI's) never run each other's images.
ENGINE_PREFIX = f"sconify-tests-{os.getpid()}"


@pytest.fixture(scope="session", autouse=True)
def _engine_names_cleanup(docker_engine: Any) -> Iterator[None]:
    """Remove this session's images from the engine at the end."""
    yield
    client = docker_engine.client()
    for image in client.images.list():
        for tag in image.tags:
            if tag.startswith(ENGINE_PREFIX):
                client.images.remove(tag)  # only this session's names; shared layers stay
    client.close()


@dataclass(frozen=True)
class Samples:
    """Native Flask images pushed to the test registry."""

    root: str
    nonroot: str


@pytest.fixture(scope="session")
def flask_samples(docker_engine: Any, registry: Registry) -> Samples:
    """Build the sample with ``images/flask/build.sh`` (mmdebstrap, cached) and push it."""

    def build(tag: str, user: str) -> str:
        target = f"{registry.addr}/native-flask-{tag}:latest"
        subprocess.run(
            [
                str(REPO / "images/flask/build.sh"),
                "--tag",
                f"{ENGINE_PREFIX}/native-flask:{tag}",
                "--user",
                user,
                "--push",
                target,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return target

    return Samples(root=build("root", "root"), nonroot=build("nonroot", "1000"))


@pytest.fixture(scope="session")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """One identity for the whole session (as one engineer would have)."""
    return Cli(tmp_path_factory.mktemp("user"))
