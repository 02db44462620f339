"""skopeo's registry flags on sconify's commands: Basic and token registries, pull and push."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import Samples
from tests.support.cli import Cli
from tests.support.registry import PASSWORD, USER, Registry, basic_registry, token_registry
from tests.support.services import CasProcess, LasProcess

__all__ = ["basic_registry", "token_registry"]

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("kind", ["basic", "token"])
def test_convert_with_creds_pulls_and_pushes(
    kind: str,
    request: pytest.FixtureRequest,
    cli: Cli,
    cas: CasProcess,
    las: LasProcess,
    flask_samples: Samples,
) -> None:
    secured: Registry = request.getfixturevalue(f"{kind}_registry")
    creds = f"{USER}:{PASSWORD}"
    native = f"docker://{secured.addr}/native:latest"
    # Without credentials the push is refused, with one clear error.
    refused = cli.run(
        "sconify", "image", "copy", f"docker://{flask_samples.root}", native, check=False
    )
    assert refused.returncode == 1 and refused.stderr.count("error:") == 1
    cli.run(
        "sconify", "image", "copy", f"docker://{flask_samples.root}", native, "--dest-creds", creds
    )
    result = json.loads(
        cli.run(
            "sconify",
            "image",
            "convert",
            native,
            f"docker://{secured.addr}/encrypted:latest",
            "--src-creds",
            creds,
            "--dest-creds",
            creds,
            "--binary=/usr/bin/python3",
            "--dir=/app",
            f"--cas={cas.api_addr}",
            f"--las={las.addr}",
            "--namespace=auth",
            "--create-namespace",
            f"--name={kind}",
            "--allow-simulation",
            "--json",
        ).stdout
    )
    assert result["pushed"]
    measured = cli.run(
        "sconify", "image", "measure", "--creds", creds, f"docker://{secured.addr}/encrypted:latest"
    ).stdout.strip()
    assert measured == result["measurement"]
