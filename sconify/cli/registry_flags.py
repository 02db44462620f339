"""skopeo's registry flags (``--creds``, ``--authfile``, ``--cert-dir``, ``--tls-verify``), for one
side (``inspect``, ``measure``) or for both sides (``--src-*``/``--dest-*`` of ``copy`` and
``convert``), turned into :class:`~sconify.registry.options.RegistryOptions`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sconify.errors import UsageError
from sconify.registry.credentials import Credentials
from sconify.registry.options import RegistryOptions

Creds = Annotated[str | None, typer.Option("--creds", help="USER:PASSWORD for the registry.")]
SrcCreds = Annotated[str | None, typer.Option("--src-creds", help="USER:PASSWORD for SRC.")]
DestCreds = Annotated[str | None, typer.Option("--dest-creds", help="USER:PASSWORD for DST.")]
AuthFile = Annotated[
    Path | None,
    typer.Option("--authfile", help="Credentials file (Docker config.json format)."),
]
CertDir = Annotated[
    Path | None,
    typer.Option(
        "--cert-dir", help="CA certificates (*.crt) and client certificate (*.cert, *.key)."
    ),
]
SrcCertDir = Annotated[Path | None, typer.Option("--src-cert-dir", help="--cert-dir for SRC.")]
DestCertDir = Annotated[Path | None, typer.Option("--dest-cert-dir", help="--cert-dir for DST.")]
TlsVerify = Annotated[
    str, typer.Option("--tls-verify", help="false: skip TLS checks (and allow plain HTTP).")
]
SrcTlsVerify = Annotated[str, typer.Option("--src-tls-verify", help="--tls-verify for SRC.")]
DestTlsVerify = Annotated[str, typer.Option("--dest-tls-verify", help="--tls-verify for DST.")]


def _boolean(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise UsageError(f"{name}={text} is not true or false", hint=f"write {name}=false")


def registry_options(
    *,
    creds: str | None,
    authfile: Path | None,
    cert_dir: Path | None,
    tls_verify: str,
    flag: str = "--tls-verify",
) -> RegistryOptions:
    """One side's options from its flags."""
    return RegistryOptions(
        creds=Credentials.parse(creds) if creds else None,
        authfile=authfile,
        cert_dir=cert_dir,
        tls_verify=_boolean(flag, tls_verify),
    )


def source_and_target_options(
    *,
    src_creds: str | None,
    dest_creds: str | None,
    authfile: Path | None,
    src_cert_dir: Path | None,
    dest_cert_dir: Path | None,
    src_tls_verify: str,
    dest_tls_verify: str,
) -> tuple[RegistryOptions, RegistryOptions]:
    """Both sides' options from skopeo's ``--src-*``/``--dest-*`` flags."""
    return (
        registry_options(
            creds=src_creds,
            authfile=authfile,
            cert_dir=src_cert_dir,
            tls_verify=src_tls_verify,
            flag="--src-tls-verify",
        ),
        registry_options(
            creds=dest_creds,
            authfile=authfile,
            cert_dir=dest_cert_dir,
            tls_verify=dest_tls_verify,
            flag="--dest-tls-verify",
        ),
    )
