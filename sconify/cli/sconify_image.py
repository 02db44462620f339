"""``sconify_image``: SCONE's lift-and-shift command, with SCONE's flags."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from sconify.cli import render
from sconify.cli.conversion import conversion_command, option, run_conversion

app = typer.Typer(
    name="sconify_image",
    help="Convert a native image into an encrypted image whose secrets only an attested "
    "instance receives from the CAS (simulation mode: see the README for what it protects).",
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _sconify_image(source: str, target: str, push_image: bool, **opts: Any) -> None:
    run_conversion(source, target, default_transport="docker-daemon", push_image=push_image, **opts)


app.command(name="sconify_image")(
    conversion_command(
        [
            option(
                "source",
                Annotated[
                    str,
                    typer.Option(
                        "--from",
                        help="Native image: an engine name (else pulled from its registry), "
                        "or a docker:// / docker-daemon: reference.",
                    ),
                ],
            ),
            option(
                "target",
                Annotated[
                    str,
                    typer.Option(
                        "--to",
                        help="The encrypted image: an engine name, or a docker:// reference.",
                    ),
                ],
            ),
            option(
                "push_image",
                Annotated[bool, typer.Option(help="Also push --to to its registry.")],
                False,
            ),
        ],
        _sconify_image,
        "Encrypt --dir trees, wrap --binary in the shim, register the session, name --to.",
    )
)


def main() -> None:
    """Console-script entry point."""
    render.run(app)
