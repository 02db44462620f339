"""``sconify dev up|down|status``: a local CAS and LAS (and registry) for development."""

from __future__ import annotations

from typing import Annotated

import typer

from sconify.cli import render
from sconify.dev.services import (
    DEFAULT_API_PORT,
    DEFAULT_ENCLAVE_PORT,
    DEFAULT_LAS_HOST,
    DEFAULT_LAS_PORT,
    DEFAULT_REGISTRY_PORT,
    DevServices,
    ServiceStatus,
)

app = typer.Typer(help="Local development services (CAS, LAS, registry).", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]


def _show(statuses: list[ServiceStatus], as_json: bool) -> None:
    if as_json:
        render.emit([s.to_json() for s in statuses], as_json=True)
        return
    for s in statuses:
        state = f"running at {s.address} (pid {s.pid})" if s.running else "not running"
        extra = ""
        if s.name == "cas" and s.running:
            extra = f", enclave API {s.details.get('enclave_address')}, key hash "
            extra += str(s.details.get("cas_key_hash"))
        if s.name == "las" and s.running:
            extra = f", quoting key {s.details.get('qe_key_id')}"
        render.emit(f"{s.name}: {state}{extra}")


@app.callback()
def _group() -> None:
    """Local development services (CAS, LAS, registry)."""


@app.command()
def up(
    api_port: Annotated[int, typer.Option(help="CAS client API port.")] = DEFAULT_API_PORT,
    enclave_port: Annotated[int, typer.Option(help="CAS enclave API port.")] = DEFAULT_ENCLAVE_PORT,
    las_port: Annotated[int, typer.Option(help="LAS port.")] = DEFAULT_LAS_PORT,
    registry_port: Annotated[int, typer.Option(help="Registry port.")] = DEFAULT_REGISTRY_PORT,
    no_registry: Annotated[bool, typer.Option("--no-registry", help="Do not start one.")] = False,
    host: Annotated[str, typer.Option(help="Address the CAS listens on.")] = "127.0.0.1",
    las_host: Annotated[
        str,
        typer.Option(
            help="Address the LAS listens on. Whoever reaches it can obtain quotes, hence the "
            "secrets of sessions that trust it: keep loopback unless remote containers need it."
        ),
    ] = DEFAULT_LAS_HOST,
    as_json: JsonOption = False,
) -> None:
    """Start what is not running yet, and wait until it answers."""
    render.set_json(as_json)
    services = DevServices()
    statuses = services.up(
        host=host,
        api_port=api_port,
        enclave_port=enclave_port,
        las_port=las_port,
        registry_port=None if no_registry else registry_port,
        las_host=las_host,
    )
    render.info(f"state and logs in {services.home}")
    _show(statuses, as_json)


@app.command()
def down(as_json: JsonOption = False) -> None:
    """Stop the dev services."""
    render.set_json(as_json)
    stopped = DevServices().down()
    if as_json:
        render.emit({"stopped": stopped}, as_json=True)
    else:
        render.info("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@app.command()
def status(as_json: JsonOption = False) -> None:
    """Show what runs, where, and the CAS key hash."""
    render.set_json(as_json)
    _show(DevServices().status(), as_json)
