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

from tests.support.docker_engine import docker_client, docker_engine
from tests.support.registry import Registry, registry
from tests.support.services import CasProcess, LasProcess, run_cas, run_las

__all__ = ["docker_client", "docker_engine", "registry"]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def las(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LasProcess]:
    """A real ``sconify las serve`` process."""
    with run_las(tmp_path_factory.mktemp("las")) as process:
        yield process


@pytest.fixture(scope="session")
def cas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CasProcess]:
    """A real ``sconify cas serve`` process (TLS on both ports)."""
    with run_cas(tmp_path_factory.mktemp("cas")) as process:
        yield process


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
                f"sconify-tests/native-flask:{tag}",
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


@dataclass
class Cli:
    """Runs ``sconify`` / ``sconify_image`` as a user would, with a private config dir."""

    home: Path

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            XDG_CONFIG_HOME=str(self.home / "config"),
            XDG_STATE_HOME=str(self.home / "state"),
            XDG_CACHE_HOME=os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache")),
            NO_COLOR="1",
        )
        return env

    def run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(BIN / tool), *args], capture_output=True, text=True, env=self.env(), timeout=600
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{tool} {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
            )
        return result


@pytest.fixture(scope="session")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """One identity for the whole session (as one engineer would have)."""
    return Cli(tmp_path_factory.mktemp("user"))
