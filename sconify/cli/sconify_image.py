"""``sconify_image``: SCONE's lift-and-shift command, with SCONE's flags."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sconify.cli import render
from sconify.errors import UsageError

app = typer.Typer(
    name="sconify_image",
    help="Convert a native image into an encrypted image whose secrets only an attested "
    "instance receives from the CAS (simulation mode: see the README for what it protects).",
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _env_pairs(values: list[str]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--env {item!r} is not KEY=VALUE", hint='write --env "KEY=VALUE"')
        pairs.append((key, value))
    return tuple(pairs)


@app.command()
def sconify_image(
    source: Annotated[str, typer.Option("--from", help="Native image (engine name or registry).")],
    target: Annotated[str, typer.Option("--to", help="Name of the encrypted image.")],
    binary: Annotated[str, typer.Option(help="The binary to run, e.g. /usr/bin/python3.")],
    dirs: Annotated[
        list[str] | None, typer.Option("--dir", help="Directory to encrypt (repeatable).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Session name (default: from --to).")] = None,
    service_name: Annotated[str, typer.Option(help="Service name in the session.")] = "service",
    namespace: Annotated[
        str | None, typer.Option(help="CAS namespace (default: a random one).")
    ] = None,
    create_namespace: Annotated[
        bool, typer.Option(help="Create the namespace if it does not exist.")
    ] = False,
    cas: Annotated[str, typer.Option(help="CAS client API address.")] = "localhost:8081",
    las: Annotated[
        str, typer.Option(help="LAS address, as the container will reach it.")
    ] = "localhost:18766",
    heap: Annotated[str, typer.Option(help="Heap limit (SCONE_HEAP), e.g. 1G.")] = "1G",
    stack: Annotated[str, typer.Option(help="Stack per thread (SCONE_STACK), e.g. 4M.")] = "1M",
    dlopen: Annotated[
        int, typer.Option(help="0 none, 1 authenticated only, 2 any (debug only).")
    ] = 1,
    fork: Annotated[int, typer.Option(help="0 forbid fork, 1 allow.")] = 0,
    env: Annotated[
        list[str] | None, typer.Option("--env", help="KEY=VALUE added to the session env.")
    ] = None,
    command: Annotated[
        str | None, typer.Option(help="Command in the session (default: ENTRYPOINT+CMD).")
    ] = None,
    authenticate: Annotated[
        list[str] | None,
        typer.Option("--authenticate", help="Directory whose files are measured (repeatable)."),
    ] = None,
    cas_debug: Annotated[
        bool, typer.Option(help="Debug image and session (tolerates debug-mode, simulation).")
    ] = False,
    allow_debug_mode: Annotated[
        bool, typer.Option(help="Build a debug image; the session tolerates debug-mode.")
    ] = False,
    allow_simulation: Annotated[
        bool, typer.Option(help="The session tolerates simulated (non-TEE) quotes.")
    ] = False,
    push_image: Annotated[bool, typer.Option(help="Also push --to to its registry.")] = False,
    identity: Annotated[
        Path | None, typer.Option(help="Client identity (PEM key) for the CAS.")
    ] = None,
    session: Annotated[
        Path | None, typer.Option(help="Also write the session (holds the key!) to FILE.")
    ] = None,
    disable_session_upload: Annotated[
        bool, typer.Option(help="Do not store the session in the CAS (image stays untagged).")
    ] = False,
    dry_run: Annotated[bool, typer.Option(help="Convert and measure, write nothing.")] = False,
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True)] = 0,
    no_color: Annotated[bool, typer.Option(help="Plain output.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Encrypt --dir trees, wrap --binary in the shim, register the session, tag --to."""
    from sconify.cas.client import CasClient
    from sconify.cli.identity import load_identity
    from sconify.las.client import LasClient
    from sconify.lift import LiftRequest, lift
    from sconify.settings import RuntimeSettings

    render.configure(verbose=verbose, no_color=no_color)
    render.set_json(json_out)
    debug = cas_debug or allow_debug_mode
    settings = RuntimeSettings.parse(heap=heap, stack=stack, dlopen=dlopen, fork=fork, debug=debug)
    request = LiftRequest(
        source=source,
        target=target,
        binary=binary,
        dirs=tuple(dirs or ()),
        settings=settings,
        cas=cas,
        las=las,
        session_name=name,
        service_name=service_name,
        namespace=namespace,
        create_namespace=create_namespace,
        command=command,
        env=_env_pairs(env or []),
        authenticate=tuple(authenticate or ()),
        allow_simulation=allow_simulation or cas_debug,
        push_image=push_image,
        identity=identity,
        session_file=session,
        upload_session=not disable_session_upload,
        dry_run=dry_run,
    )

    client = CasClient(cas, identity=load_identity(identity), pinned_key_hash=None)
    with client, render.progress("converting") as status:
        result = lift(request, cas=client, las=LasClient(las), on_step=status)
    for warning in result.warnings:
        render.warn(warning)
    if json_out:
        render.emit(result.to_json(), as_json=True)
    else:
        render.info(
            f"converted {source} -> {target} (measurement {result.measurement}, "
            f"{result.protected_files} protected files)"
        )
        render.emit(result.session_name)


def main() -> None:
    """Console-script entry point."""
    render.run(app)
