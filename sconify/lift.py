"""The lift-and-shift job behind ``sconify_image``: read, convert, store the session, write, tag.

The order is what keeps a failure harmless. Everything that can be checked is checked before any
work (CAS and LAS reachable, the session valid); the CAS stores the session holding the volume key
before the image is written, and the image is written *untagged* (pushed by digest, loaded into
the engine without a name) and gets its tag last. A failure before that leaves no tagged image,
and never an image whose key is lost.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import secrets
import shlex
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from sconify.cas.schema import CasVersion
from sconify.convert import ConversionRequest, Converted, convert
from sconify.errors import CasRefused, ImageNotFound, SconifyError, UsageError
from sconify.image import BlobStore, Compression, Image, Layer, Platform
from sconify.las.client import QePublicKey
from sconify.mutate.indexcache import DiskIndexCache
from sconify.mutate.prefetch import PrefetchingIndexes
from sconify.registry import TransferStats
from sconify.registry.options import RegistryOptions
from sconify.secret_file import check_secret_target, write_secret_file
from sconify.session.load import load_session
from sconify.settings import RuntimeSettings
from sconify.transports import daemon, dispatch, remote
from sconify.transports.refs import (
    DaemonRef,
    DefaultTransport,
    ImageRef,
    RegistryRef,
    parse,
    parse_name,
)
from sconify.transports.staged import Staged, platforms_of, stage, stage_index

log = logging.getLogger(__name__)

SESSION_VERSION = "0.3.10"
_SESSION_FILE = "--session"
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_\-.~]")


@dataclass(frozen=True)
class LiftRequest:
    """Everything ``sconify_image`` was asked to do (already parsed and validated)."""

    source: str
    target: str
    binary: str
    dirs: tuple[str, ...]
    settings: RuntimeSettings
    cas: str
    las: str
    session_name: str | None = None
    service_name: str = "service"
    namespace: str | None = None
    create_namespace: bool = False
    command: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    authenticate: tuple[str, ...] = ()
    allow_simulation: bool = False
    push_image: bool = False
    session_file: Path | None = None
    upload_session: bool = True
    dry_run: bool = False
    default_transport: DefaultTransport = "docker-daemon"
    compression: Compression = Compression.GZIP
    platform: Platform | None = None
    all_platforms: bool = False
    source_options: RegistryOptions | None = None
    target_options: RegistryOptions | None = None


@dataclass
class LiftResult:
    """What was done: the image, its session and measurement (no secrets)."""

    config_id: str
    session_name: str
    session_hash: str | None
    measurement: str
    digest: str
    written: list[dict[str, object]]
    pushed: str | None
    uploaded_bytes: int
    regions: tuple[str, ...]
    rewritten_layers: tuple[int, ...]
    protected_files: int
    platforms: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """For ``--json``."""
        return {
            "config_id": self.config_id,
            "session": self.session_name,
            "session_hash": self.session_hash,
            "measurement": self.measurement,
            "digest": self.digest,
            "written": self.written,
            "pushed": self.pushed,
            "uploaded_bytes": self.uploaded_bytes,
            "regions": list(self.regions),
            "rewritten_layers": list(self.rewritten_layers),
            "protected_files": self.protected_files,
            "platforms": self.platforms,
            "warnings": self.warnings,
        }


def default_session_name(target: str) -> str:
    """SCONE's default session name: the target image name, made a valid session name."""
    return _NAME_CHARS.sub("-", target).strip("-")[:128] or "session"


def _split_addr(addr: str, default_port: int) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        return addr, default_port
    return host.strip("[]"), int(port)


def tolerations(request: LiftRequest) -> list[str]:
    """What the session tolerates: simulation only when asked, debug-mode with debug images."""
    out = []
    if request.settings.debug:
        out.append("debug-mode")
    if request.allow_simulation or request.settings.debug:
        out.append("simulation")
    return out


def _service(request: LiftRequest, service: str, converted: Converted) -> dict[str, Any]:
    command = shlex.split(request.command) if request.command else list(converted.native_command)
    if not command:
        raise UsageError(
            "the native image has no ENTRYPOINT or CMD, so there is no command to run",
            hint='pass --command, e.g. --command="python3 /app/app.py"',
        )
    return {
        "name": service,
        "command": command,
        "environment": converted.native_env,
        "pwd": converted.native_workdir,
        "attestation": {"mrenclave": [converted.measurement]},
        "fspf_path": converted.fspf_path,
        "fspf_key": converted.key.reveal_hex(),
        "fspf_tag": converted.fspf_tag,
    }


def session_document(
    request: LiftRequest,
    services: Sequence[tuple[str, Converted]],
    *,
    name: str,
    qe_key_id: str,
    predecessor: str | None,
) -> dict[str, Any]:
    """The session that releases each volume key, command and environment to its measurement."""
    doc: dict[str, Any] = {
        "name": name,
        "version": SESSION_VERSION,
        "access_policy": {"read": ["CREATOR"], "update": ["CREATOR"]},
        "services": [_service(request, service, conv) for service, conv in services],
        "security": {
            "attestation": {
                "tolerate": tolerations(request),
                "trusted_scone_qe_pubkeys": [qe_key_id],
            }
        },
    }
    if predecessor:
        doc["predecessor"] = predecessor
    return doc


def service_name_for(request: LiftRequest, platform: Platform | None) -> str:
    """One service per platform with ``--all-platforms`` (each has its own key and measurement)."""
    if platform is None or not request.all_platforms:
        return request.service_name
    suffix = "-".join(p for p in (platform.architecture, platform.variant) if p)
    return f"{request.service_name}-{suffix}"


def namespace_document(name: str) -> dict[str, Any]:
    """A namespace: a session without services whose creator may create sessions inside it."""
    return {
        "name": name,
        "version": SESSION_VERSION,
        "access_policy": {
            "read": ["CREATOR"],
            "update": ["CREATOR"],
            "create_sessions": ["CREATOR"],
        },
    }


def _to_yaml(doc: dict[str, Any]) -> str:
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    load_session(text)  # our own output must pass the same validation the CAS applies
    return text


def read_source(
    text: str,
    store: BlobStore,
    default: DefaultTransport,
    platform: Platform | None = None,
    options: RegistryOptions | None = None,
    taps: remote.LayerTaps | None = None,
) -> Image:
    """Read ``--from``/``SRC``; ``taps`` watch the layers that are downloaded.

    With ``docker-daemon`` as the default (``sconify_image``), a bare name means the local engine
    and, when the engine does not have it, its registry, as SCONE does; otherwise bare names are
    registry references and every transport reads from its own place.
    """
    ref = parse(text, default=default)
    if (
        default == "docker-daemon"
        and isinstance(ref, DaemonRef)
        and not text.startswith("docker-daemon:")
    ):
        if daemon.exists(ref):
            return daemon.read(ref, store)
        log.info("%s is not in the Docker engine; pulling it from its registry", text)
        try:
            return remote.read(
                parse_name(text), store, platform=platform, options=options, taps=taps
            )
        except ImageNotFound as err:
            raise ImageNotFound(
                f"{text}: no such image in the Docker engine or in its registry",
                hint="check the name with `docker images`, or build and push the image first",
            ) from err
    return dispatch.read(ref, store, platform=platform, options=options, taps=taps)


def _registry_source(request: LiftRequest) -> RegistryRef | None:
    """The source as a registry reference, for mounting its untouched layers at the target."""
    ref = parse(request.source, default=request.default_transport)
    return ref if isinstance(ref, RegistryRef) else None


def destinations(text: str, default: DefaultTransport, *, push_image: bool) -> list[ImageRef]:
    """Where ``--to``/``DST`` goes: a bare name for ``sconify_image`` is the engine, and its
    registry too with ``--push-image``; anything else is the one place it names."""
    ref = parse(text, default=default)
    if isinstance(ref, DaemonRef) and push_image and not text.startswith("docker-daemon:"):
        return [ref, parse_name(text)]
    return [ref]


class CasApi(Protocol):
    """What the job needs of a CAS client (:class:`sconify.cas.client.CasClient`)."""

    def version(self) -> CasVersion:
        """The CAS version, key hash and enclave port."""

    def current_hash(self, name: str) -> str | None:
        """The hash of the current version of a session, or None."""

    def create_session(self, yaml_text: str) -> str:
        """Store a session (create or update); return its hash."""


class LasApi(Protocol):
    """What the job needs of a LAS client (:class:`sconify.las.client.LasClient`)."""

    def qe_pubkey(self) -> QePublicKey:
        """The LAS quoting key (its id goes into the session)."""


def lift(
    request: LiftRequest,
    *,
    cas: CasApi,
    las: LasApi,
    workdir: Path | None = None,
    on_step: Callable[[str], None] = lambda step: None,
) -> LiftResult:
    """Run the whole job; ``on_step`` hears what is being done (for progress display)."""
    warnings: list[str] = []
    if not (request.allow_simulation or request.settings.debug):
        warnings.append(
            "the session does not tolerate simulation, so this image will not start on a "
            "machine without a TEE; add --allow-simulation (or --cas-debug) to run it here"
        )
    if request.session_file is not None:
        check_secret_target(request.session_file, _SESSION_FILE)
    namespace = request.namespace or f"sconify-{secrets.token_hex(4)}"
    name = f"{namespace}/{request.session_name or default_session_name(request.target)}"
    targets = destinations(request.target, request.default_transport, push_image=request.push_image)

    # The CAS is needed even without uploading: the image pins its key (contracts.md section 3).
    on_step(f"contacting the CAS at {request.cas} and the LAS at {request.las}")
    version = cas.version()
    qe = las.qe_pubkey()
    cas_host, _ = _split_addr(request.cas, 8081)
    enclave_addr = f"{cas_host}:{version.enclave_port}"

    stats = TransferStats()
    with (
        tempfile.TemporaryDirectory(prefix="sconify-", dir=workdir) as tmp,
        contextlib.ExitStack() as background,
    ):
        store = BlobStore(Path(tmp) / "store")
        early: dict[ImageRef, remote.EarlyUploads] = {
            target: background.enter_context(
                remote.EarlyUploads(
                    target,
                    options=request.target_options,
                    mount_from=_registry_source(request),
                    stats=stats,
                )
            )
            for target in targets
            if isinstance(target, RegistryRef) and not request.dry_run
        }

        def upload_final(layers: Sequence[Layer]) -> None:
            for sending in early.values():
                sending.offer(layers)

        wanted: list[Platform | None] = [request.platform]
        if request.all_platforms:
            source_ref = parse(request.source, default=request.default_transport)
            wanted = list(platforms_of(source_ref, request.source_options))
            if not wanted:
                wanted = [None]
        services: list[tuple[str, Converted]] = []
        indexes = background.enter_context(PrefetchingIndexes(DiskIndexCache.from_environment()))
        for platform in wanted:
            on_step(f"reading {request.source}" + (f" ({platform})" if platform else ""))
            native = read_source(
                request.source,
                store,
                request.default_transport,
                platform,
                request.source_options,
                taps=indexes.tap,
            )
            service = service_name_for(request, platform)
            on_step(f"encrypting and wrapping {native.platform}")
            work = Path(tmp) / f"work-{len(services)}"
            work.mkdir()
            converted = convert(
                native,
                ConversionRequest(
                    binary=request.binary,
                    dirs=request.dirs,
                    settings=request.settings,
                    config_id=f"{name}/{service}",
                    cas_addr=enclave_addr,
                    las_addr=request.las,
                    cas_key_hash=version.cas_key_hash,
                    authenticate=request.authenticate,
                    extra_env=request.env,
                    compression=request.compression,
                ),
                store,
                work,
                cache=indexes,
                on_final=upload_final,
            )
            services.append((service, converted))
        predecessor = cas.current_hash(name)
        session_yaml = _to_yaml(
            session_document(
                request, services, name=name, qe_key_id=qe.key_id, predecessor=predecessor
            )
        )
        if request.session_file is not None:
            write_secret_file(request.session_file, session_yaml.encode(), _SESSION_FILE)
        if request.dry_run:
            return _result(services, name, None, [], stats, warnings)

        # The session goes first, while untouched layers are still uploading (early); an
        # image is named only once it is written whole *and* its session is stored.
        session_hash = None
        if request.upload_session:
            _ensure_namespace(cas, namespace, request.create_namespace, warnings)
            on_step(f"storing session {name}")
            session_hash = cas.create_session(session_yaml)
        staged: list[Staged] = []
        try:
            write = (
                functools.partial(stage_index, [conv.image for _, conv in services])
                if request.all_platforms
                else functools.partial(stage, services[0][1].image)
            )
            for target in targets:
                on_step(f"writing {target} (unnamed until it is complete)")
                staged.append(
                    write(
                        target,
                        stats=stats,
                        options=request.target_options,
                        mount_from=_registry_source(request),
                        early=early.get(target),
                    )
                )
            if session_hash is not None:
                for item in staged:
                    item.commit()
        except (SconifyError, KeyboardInterrupt):
            for item in staged:
                item.discard()
            raise
        return _result(services, name, session_hash, staged, stats, warnings)


def _ensure_namespace(cas: CasApi, namespace: str, create: bool, warnings: list[str]) -> None:
    if cas.current_hash(namespace) is not None:
        if create:
            warnings.append(f"namespace {namespace} exists already; using it")
        return
    if not create:
        raise CasRefused(
            f"namespace {namespace} does not exist on the CAS",
            status=404,
            check="namespace",
            hint="add --create-namespace, or pass an existing --namespace",
        )
    cas.create_session(_to_yaml(namespace_document(namespace)))


def _result(
    services: Sequence[tuple[str, Converted]],
    name: str,
    session_hash: str | None,
    staged: Sequence[Staged],
    stats: TransferStats,
    warnings: Sequence[str],
) -> LiftResult:
    named = session_hash is not None
    first_service, first = services[0]
    return LiftResult(
        config_id=f"{name}/{first_service}",
        session_name=name,
        session_hash=session_hash,
        measurement=first.measurement,
        digest=staged[0].written if len(services) > 1 and staged else str(first.image.digest()),
        written=[{"ref": str(s.ref), "id": s.written, "named": named} for s in staged],
        pushed=next(
            (s.ref.familiar() for s in staged if named and isinstance(s.ref, RegistryRef)), None
        ),
        uploaded_bytes=stats.bytes_uploaded,
        regions=first.regions,
        rewritten_layers=first.rewritten_layers,
        protected_files=first.protected_files,
        platforms=[
            {
                "platform": str(conv.image.platform),
                "service": f"{name}/{service}",
                "measurement": conv.measurement,
                "digest": str(conv.image.digest()),
            }
            for service, conv in services
        ],
        warnings=list(warnings),
    )
