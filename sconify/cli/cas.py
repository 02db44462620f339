"""``sconify cas serve``: run a CAS (client API with mutual TLS, enclave API with TLS)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sconify.cli import render

app = typer.Typer(help="The configuration and attestation service (CAS).", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """The configuration and attestation service (CAS)."""


@app.command()
def serve(
    state_dir: Annotated[
        Path, typer.Option("--state-dir", help="Keys, certificates and the database.")
    ],
    api_port: Annotated[int, typer.Option(help="Client API port (0: any free port).")] = 8081,
    enclave_port: Annotated[int, typer.Option(help="Enclave API port (0: any free port).")] = 18765,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True)] = 1,
) -> None:
    """Serve the CAS until interrupted.

    The bound ports and the CAS key hash are written to STATE_DIR/ready.json once listening.
    """
    from sconify.cas.server import run

    render.configure(verbose=verbose)
    run(state_dir, host=host, api_port=api_port, enclave_port=enclave_port)
