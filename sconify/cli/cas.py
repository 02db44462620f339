"""``sconify cas serve`` and ``sconify cas audit verify``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sconify.cli import render

app = typer.Typer(help="The configuration and attestation service (CAS).", no_args_is_help=True)
audit = typer.Typer(help="The CAS's hash-chained audit log.", no_args_is_help=True)
app.add_typer(audit, name="audit")

_DB_HELP = (
    "A postgresql:// URL: sessions, audit log and challenges live there, shared by every CAS "
    "given the same URL (and the same master.key). Default: SQLite in the state dir."
)


@app.callback()
def _group() -> None:
    """The configuration and attestation service (CAS)."""


@audit.callback()
def _audit_group() -> None:
    """The CAS's hash-chained audit log."""


@app.command()
def serve(
    state_dir: Annotated[
        Path, typer.Option("--state-dir", help="Keys, certificates and (by default) the database.")
    ],
    db: Annotated[str | None, typer.Option("--db", help=_DB_HELP, envvar="SCONIFY_CAS_DB")] = None,
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
    run(state_dir, host=host, api_port=api_port, enclave_port=enclave_port, db=db)


@audit.command("verify")
def audit_verify(
    state_dir: Annotated[
        Path, typer.Option("--state-dir", help="The CAS state dir (holds master.key).")
    ],
    db: Annotated[str | None, typer.Option("--db", help=_DB_HELP, envvar="SCONIFY_CAS_DB")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check the audit chain end to end: entry count and head hash, exit 1 at a broken entry."""
    from sconify.cas.store import verify_chain

    render.set_json(as_json)
    report = verify_chain(state_dir, db)
    if as_json:
        render.emit({"entries": report.entries, "head": report.head}, as_json=True)
    else:
        render.emit(f"{report.entries} entries, head {report.head}")
