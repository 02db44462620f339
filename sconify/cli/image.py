"""``sconify image``: measure, inspect and copy images wherever they live."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sconify.cli import render
from sconify.cli.conversion import conversion_command, option
from sconify.cli.registry_flags import (
    AuthFile,
    CertDir,
    Creds,
    DestCertDir,
    DestCreds,
    DestTlsVerify,
    SrcCertDir,
    SrcCreds,
    SrcTlsVerify,
    TlsVerify,
    registry_options,
    source_and_target_options,
)

if TYPE_CHECKING:
    from sconify.image import Image
    from sconify.registry.options import RegistryOptions

app = typer.Typer(help="Measure, inspect and copy images.", no_args_is_help=True)

RefArg = Annotated[
    str,
    typer.Argument(
        help="docker://HOST/REPO:TAG, docker-daemon:NAME:TAG, oci:DIR[:TAG], "
        "oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG] (bare name: docker://)"
    ),
]


PlatformOpt = Annotated[
    str | None, typer.Option(help="Pick OS/ARCH\\[/VARIANT] from an index (default linux/amd64).")
]


@contextlib.contextmanager
def _image_at(ref: str, platform: str | None, options: RegistryOptions | None) -> Iterator[Image]:
    """The image ``ref`` names, read into a scratch store that lives as long as the block."""
    from sconify.image import BlobStore, Platform
    from sconify.transports import dispatch
    from sconify.transports.refs import parse

    with tempfile.TemporaryDirectory(prefix="sconify-") as tmp:
        yield dispatch.read(
            parse(ref),
            BlobStore(Path(tmp)),
            platform=Platform.parse(platform) if platform else None,
            options=options,
        )


@app.command()
def measure(
    ref: RefArg,
    platform: PlatformOpt = None,
    creds: Creds = None,
    authfile: AuthFile = None,
    cert_dir: CertDir = None,
    tls_verify: TlsVerify = "true",
    json_out: Annotated[bool, typer.Option("--json", help="Show the measured fields too.")] = False,
) -> None:
    """Print the measurement the shim computes for a converted image (what SCONE_HASH=1 prints)."""
    from sconify.inspect import measure_image

    options = registry_options(
        creds=creds, authfile=authfile, cert_dir=cert_dir, tls_verify=tls_verify
    )
    with _image_at(ref, platform, options) as image:
        report = measure_image(image)
    if json_out:
        render.emit({"measurement": report.measurement, "fields": report.fields}, as_json=True)
    else:
        render.emit(report.measurement)


@app.command()
def inspect(
    ref: RefArg,
    platform: PlatformOpt = None,
    creds: Creds = None,
    authfile: AuthFile = None,
    cert_dir: CertDir = None,
    tls_verify: TlsVerify = "true",
    json_out: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Show layers, media types and, for a converted image, regions, measurement and config id."""
    from sconify.inspect import describe

    options = registry_options(
        creds=creds, authfile=authfile, cert_dir=cert_dir, tls_verify=tls_verify
    )
    with _image_at(ref, platform, options) as image:
        info = describe(image)
    if json_out:
        render.emit(info, as_json=True)
        return
    lines = [f"digest:      {info['digest']}", f"platform:    {info['platform']}"]
    if info.get("converted"):
        lines += [
            f"config id:   {info['config_id']}",
            f"measurement: {info['measurement']}",
            f"binary:      {info['binary']}",
            f"protected:   {', '.join(info['regions']) or '-'}",
            f"debug:       {info['debug']}",
        ]
    else:
        lines.append("converted:   no")
    lines += [f"layer:       {layer['digest']} {layer['size']}" for layer in info["layers"]]
    render.emit("\n".join(lines))


def _convert(source: str, target: str, **opts: Any) -> None:
    from sconify.cli.conversion import run_conversion

    run_conversion(source, target, default_transport="docker", **opts)


app.command(name="convert")(
    conversion_command(
        [
            option("source", RefArg),
            option(
                "target",
                Annotated[
                    str, typer.Argument(help="Where the converted image goes (same forms as SRC).")
                ],
            ),
        ],
        _convert,
        "Convert SRC into DST (any transports; a bare name is docker://), like sconify_image.",
    )
)


@app.command()
def copy(
    src: RefArg,
    dst: RefArg,
    src_creds: SrcCreds = None,
    dest_creds: DestCreds = None,
    authfile: AuthFile = None,
    src_cert_dir: SrcCertDir = None,
    dest_cert_dir: DestCertDir = None,
    src_tls_verify: SrcTlsVerify = "true",
    dest_tls_verify: DestTlsVerify = "true",
) -> None:
    """Copy an image without converting it (like skopeo copy); prints the written digest."""
    from sconify.transports import dispatch
    from sconify.transports.refs import parse

    target = parse(dst)
    source_options, target_options = source_and_target_options(
        src_creds=src_creds,
        dest_creds=dest_creds,
        authfile=authfile,
        src_cert_dir=src_cert_dir,
        dest_cert_dir=dest_cert_dir,
        src_tls_verify=src_tls_verify,
        dest_tls_verify=dest_tls_verify,
    )
    with _image_at(src, None, source_options) as image:
        render.emit(dispatch.write(image, target, options=target_options))
