"""The conversion options, defined once and shared by ``sconify_image`` and ``image convert``.

The two commands differ only in how they name the source and destination (SCONE's
``--from/--to`` with engine-first bare names, or skopeo's positional ``SRC DST`` with registry
bare names); :func:`conversion_command` builds each from the shared option list below.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from sconify.cli import render
from sconify.cli.registry_flags import (
    AuthFile,
    DestCertDir,
    DestCreds,
    DestTlsVerify,
    SrcCertDir,
    SrcCreds,
    SrcTlsVerify,
    source_and_target_options,
)
from sconify.errors import UsageError
from sconify.transports.refs import DefaultTransport


def conversion_options(
    *,
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
    identity: Annotated[
        Path | None, typer.Option(help="Client identity (PEM key) for the CAS.")
    ] = None,
    session: Annotated[
        Path | None, typer.Option(help="Also write the session (holds the key!) to FILE.")
    ] = None,
    disable_session_upload: Annotated[
        bool, typer.Option(help="Do not store the session in the CAS (image stays unnamed).")
    ] = False,
    compression: Annotated[
        str, typer.Option(help="Compression of the layers sconify writes: gzip or zstd.")
    ] = "gzip",
    platform: Annotated[
        str | None,
        typer.Option(help="Pick OS/ARCH\\[/VARIANT] from an index (default linux/amd64)."),
    ] = None,
    all_platforms: Annotated[
        bool, typer.Option(help="Convert every platform of an index into a new index.")
    ] = False,
    src_creds: SrcCreds = None,
    dest_creds: DestCreds = None,
    authfile: AuthFile = None,
    src_cert_dir: SrcCertDir = None,
    dest_cert_dir: DestCertDir = None,
    src_tls_verify: SrcTlsVerify = "true",
    dest_tls_verify: DestTlsVerify = "true",
    dry_run: Annotated[bool, typer.Option(help="Convert and measure, write nothing.")] = False,
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True)] = 0,
    no_color: Annotated[bool, typer.Option(help="Plain output.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> dict[str, Any]:
    """The shared options (only their signature is used)."""
    return locals()


_REGISTRY_FLAGS = (
    "src_creds",
    "dest_creds",
    "authfile",
    "src_cert_dir",
    "dest_cert_dir",
    "src_tls_verify",
    "dest_tls_verify",
)


def _env_pairs(values: list[str]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--env {item!r} is not KEY=VALUE", hint='write --env "KEY=VALUE"')
        pairs.append((key, value))
    return tuple(pairs)


def run_conversion(
    source: str,
    target: str,
    *,
    default_transport: DefaultTransport,
    push_image: bool = False,
    **opts: Any,
) -> None:
    """Build the request from the options, run the job, report the result."""
    from sconify.cas.client import CasClient
    from sconify.cli.identity import load_identity
    from sconify.image import Compression, Platform
    from sconify.las.client import LasClient
    from sconify.lift import LiftRequest, lift
    from sconify.settings import RuntimeSettings

    render.configure(verbose=opts["verbose"], no_color=opts["no_color"])
    render.set_json(opts["json_out"])
    debug = opts["cas_debug"] or opts["allow_debug_mode"]
    settings = RuntimeSettings.parse(
        heap=opts["heap"],
        stack=opts["stack"],
        dlopen=opts["dlopen"],
        fork=opts["fork"],
        debug=debug,
    )
    if opts["compression"] not in ("gzip", "zstd"):
        raise UsageError(
            f"--compression={opts['compression']} is not gzip or zstd",
            hint="use --compression=gzip (the default, read by every engine) or zstd",
        )
    source_options, target_options = source_and_target_options(
        **{key: opts[key] for key in _REGISTRY_FLAGS}
    )
    request = LiftRequest(
        source=source,
        target=target,
        binary=opts["binary"],
        dirs=tuple(opts["dirs"] or ()),
        settings=settings,
        cas=opts["cas"],
        las=opts["las"],
        session_name=opts["name"],
        service_name=opts["service_name"],
        namespace=opts["namespace"],
        create_namespace=opts["create_namespace"],
        command=opts["command"],
        env=_env_pairs(opts["env"] or []),
        authenticate=tuple(opts["authenticate"] or ()),
        allow_simulation=opts["allow_simulation"] or opts["cas_debug"],
        push_image=push_image,
        session_file=opts["session"],
        upload_session=not opts["disable_session_upload"],
        dry_run=opts["dry_run"],
        default_transport=default_transport,
        compression=Compression(opts["compression"]),
        platform=Platform.parse(opts["platform"]) if opts["platform"] else None,
        all_platforms=opts["all_platforms"],
        source_options=source_options,
        target_options=target_options,
    )
    if request.platform and request.all_platforms:
        raise UsageError(
            "--platform and --all-platforms exclude each other", hint="give one of them"
        )
    client = CasClient(opts["cas"], identity=load_identity(opts["identity"]), pinned_key_hash=None)
    with client, render.progress("converting") as status:
        result = lift(request, cas=client, las=LasClient(opts["las"]), on_step=status)
    for warning in result.warnings:
        render.warn(warning)
    if opts["json_out"]:
        render.emit(result.to_json(), as_json=True)
        return
    render.info(
        f"converted {source} -> {target} (measurement {result.measurement}, "
        f"{result.protected_files} protected files, {result.uploaded_bytes} bytes uploaded)"
    )
    render.emit(result.session_name)


def conversion_command(
    head: list[inspect.Parameter], body: Callable[..., None], doc: str
) -> Callable[..., None]:
    """A Typer command whose parameters are ``head`` followed by the shared options."""
    shared = inspect.signature(conversion_options, eval_str=True).parameters.values()
    params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in [*head, *shared]]

    def command(**kwargs: Any) -> None:
        body(**kwargs)

    command.__dict__["__signature__"] = inspect.Signature(params)
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = doc
    return command


def option(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    """A parameter for the ``head`` of :func:`conversion_command`."""
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default
    )
