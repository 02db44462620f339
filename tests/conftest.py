"""Fixtures shared by every test package."""

from __future__ import annotations

import pytest

from tests.support.golister import GoLister


@pytest.fixture(scope="session")
def go_lister(tmp_path_factory: pytest.TempPathFactory) -> GoLister:
    """Go's ``archive/tar`` as the engines read layers (``runtime_shim/cmd/tarlist``)."""
    return GoLister.build(tmp_path_factory.mktemp("golister"))
