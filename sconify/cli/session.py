"""``sconify session create|update|read|hash``: session descriptions and the CAS."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sconify.cli import render
from sconify.cli.identity import (
    DEFAULT_CAS,
    CasOption,
    IdentityOption,
    JsonOption,
    KeyHashOption,
    load_identity,
)
from sconify.errors import SessionError, UsageError

app = typer.Typer(help="Create, update, read and hash CAS sessions.", no_args_is_help=True)

FileArgument = Annotated[Path, typer.Argument(help="Session description (YAML); - for stdin.")]


def _read(path: Path) -> str:
    import sys

    if str(path) == "-":
        data = sys.stdin.buffer.read()
    else:
        try:
            data = path.read_bytes()
        except OSError as err:
            raise UsageError(f"cannot read {path}: {err.strerror}", hint="check the path") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SessionError(
            f"{'stdin' if str(path) == '-' else path} is not UTF-8 text "
            f"(byte 0x{data[err.start]:02x} at offset {err.start})",
            hint="save the session description as UTF-8",
        ) from None


@app.callback()
def _group() -> None:
    """Create, update, read and hash CAS sessions."""


def _upload(
    file: Path,
    cas: str,
    identity: Path | None,
    cas_key_hash: str | None,
    as_json: bool,
    *,
    fill_predecessor: bool,
) -> None:
    from sconify.cas.client import CasClient

    render.set_json(as_json)
    text = _read(file)
    with CasClient(cas, identity=load_identity(identity), pinned_key_hash=cas_key_hash) as client:
        upload = client.update_session if fill_predecessor else client.create_session
        new_hash = upload(text)
    render.emit({"hash": new_hash} if as_json else new_hash, as_json=as_json)


@app.command()
def create(
    file: FileArgument,
    cas: CasOption = DEFAULT_CAS,
    identity: IdentityOption = None,
    cas_key_hash: KeyHashOption = None,
    as_json: JsonOption = False,
) -> None:
    """Upload a session; prints its hash (with predecessor set, this updates it)."""
    _upload(file, cas, identity, cas_key_hash, as_json, fill_predecessor=False)


@app.command()
def update(
    file: FileArgument,
    cas: CasOption = DEFAULT_CAS,
    identity: IdentityOption = None,
    cas_key_hash: KeyHashOption = None,
    as_json: JsonOption = False,
) -> None:
    """Update a session, filling in predecessor from the CAS; prints the new hash."""
    _upload(file, cas, identity, cas_key_hash, as_json, fill_predecessor=True)


@app.command()
def read(
    name: Annotated[str, typer.Argument(help="Session name, e.g. ns/session.")],
    hash: Annotated[str | None, typer.Option("--hash", help="A past version.")] = None,
    cas: CasOption = DEFAULT_CAS,
    identity: IdentityOption = None,
    cas_key_hash: KeyHashOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print a session's description as stored (YAML), or its record with --json."""
    from sconify.cas.client import CasClient

    render.set_json(as_json)
    with CasClient(cas, identity=load_identity(identity), pinned_key_hash=cas_key_hash) as client:
        record = client.read_session(name, hash)
    if as_json:
        render.emit(record.to_json(), as_json=True)
    else:
        render.info(f"# {record.name} @ {record.hash}")
        render.emit(record.session.rstrip("\n"))


@app.command("hash")
def hash_(file: FileArgument, as_json: JsonOption = False) -> None:
    """Print the hash the CAS will give this description (no CAS needed)."""
    from sconify.session import load_session, session_hash

    render.set_json(as_json)
    session = load_session(_read(file))
    value = session_hash(session)
    render.emit({"hash": value, "name": session.name} if as_json else value, as_json=as_json)
