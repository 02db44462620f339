"""``sconify las serve``: run a local attestation service (simulated quoting)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sconify.cli import render

app = typer.Typer(help="The local attestation service (LAS).", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """The local attestation service (LAS)."""


@app.command()
def serve(
    state_dir: Annotated[Path, typer.Option("--state-dir", help="Where the quoting key lives.")],
    port: Annotated[int, typer.Option(help="TCP port (0: any free port).")] = 18766,
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on. Whoever can reach it can obtain quotes for any "
            "measurement, hence the secrets of sessions that trust this LAS: the default, "
            "loopback, is this host and its --network host containers only."
        ),
    ] = "127.0.0.1",
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True)] = 1,
) -> None:
    """Serve GET /v1/qe-pubkey and POST /v1/quote until interrupted.

    The bound port is written to STATE_DIR/ready.json once listening. The first line on stderr
    says who can obtain a quote and what that gives them.
    """
    from sconify.las.server import run

    render.configure(verbose=verbose)
    run(state_dir, host=host, port=port)
