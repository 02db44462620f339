"""``sconify identity show|create``: the key that owns your sessions on a CAS.

Also holds the options every CAS-talking command shares (``--cas``, ``--identity``...).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sconify.cli import render

if TYPE_CHECKING:
    # cryptography's x509, with it: ~30 ms that commands not talking to a CAS need not pay.
    from sconify.cas.identity import Identity

app = typer.Typer(help="Your identity towards a CAS (a P-256 key).", no_args_is_help=True)

CasOption = Annotated[
    str,
    typer.Option("--cas", envvar="SCONIFY_CAS", help="CAS client API address (host:port)."),
]
IdentityOption = Annotated[
    Path | None,
    typer.Option(
        "--identity",
        envvar="SCONIFY_IDENTITY",
        help="Identity key (PEM). Default: $XDG_CONFIG_HOME/sconify/identity.pem.",
    ),
]
KeyHashOption = Annotated[
    str | None,
    typer.Option("--cas-key-hash", help="Expected CAS key hash (default: the pin on record)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]

DEFAULT_CAS = "127.0.0.1:8081"


def load_identity(path: Path | None) -> Identity:
    """Load or create the identity, warning the human when a new one was made."""
    from sconify.cas.identity import Identity

    identity, created = Identity.load_or_create(path)
    if created:
        render.warn(
            f"created a new identity at {identity.path} (key hash {identity.key_hash}); "
            "back it up: whoever loses it loses the update rights of its sessions"
        )
    return identity


@app.callback()
def _group() -> None:
    """Your identity towards a CAS (a P-256 key)."""


@app.command()
def show(identity: IdentityOption = None, as_json: JsonOption = False) -> None:
    """Print the key hash that access policies name (creates the identity if missing)."""
    render.set_json(as_json)
    found = load_identity(identity)
    if as_json:
        render.emit({"key_hash": found.key_hash, "path": str(found.path)}, as_json=True)
    else:
        render.emit(found.key_hash)


@app.command()
def create(identity: IdentityOption = None, as_json: JsonOption = False) -> None:
    """Create a new identity key; refuses to overwrite one."""
    from sconify.cas.identity import Identity, default_identity_path

    render.set_json(as_json)
    made = Identity.create(identity or default_identity_path())
    render.warn(f"created {made.path}: back it up, losing it loses your update rights")
    if as_json:
        render.emit({"key_hash": made.key_hash, "path": str(made.path)}, as_json=True)
    else:
        render.emit(made.key_hash)
