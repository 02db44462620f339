"""The lift-and-shift job behind ``sconify_image``: read, convert, store the session, tag.

The order is what keeps a failure harmless. Everything that can be checked is checked before any
work (CAS and LAS reachable, the session valid); the converted image is written *untagged* (pushed
by digest, loaded into the engine without a name); only after the CAS has stored the session
holding the volume key does the image get its tag. A failure before that leaves no tagged image
whose key is lost.
"""

from __future__ import annotations

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
from sconify.image import BlobStore, Digest, Image
from sconify.las.client import QePublicKey
from sconify.session.load import load_session
from sconify.settings import RuntimeSettings
from sconify.transports import daemon, remote
from sconify.transports.refs import DaemonRef, ImageRef, RegistryRef, parse, parse_name

log = logging.getLogger(__name__)

SESSION_VERSION = "0.3.10"
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
    identity: Path | None = None
    session_file: Path | None = None
    upload_session: bool = True
    dry_run: bool = False


@dataclass
class LiftResult:
    """What was done: the image, its session and measurement (no secrets)."""

    config_id: str
    session_name: str
    session_hash: str | None
    measurement: str
    image: str
    digest: str
    image_id: str | None
    pushed: str | None
    regions: tuple[str, ...]
    rewritten_layers: tuple[int, ...]
    protected_files: int
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """For ``--json``."""
        return {
            "config_id": self.config_id,
            "session": self.session_name,
            "session_hash": self.session_hash,
            "measurement": self.measurement,
            "image": self.image,
            "digest": self.digest,
            "image_id": self.image_id,
            "pushed": self.pushed,
            "regions": list(self.regions),
            "rewritten_layers": list(self.rewritten_layers),
            "protected_files": self.protected_files,
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


def session_document(
    request: LiftRequest,
    converted: Converted,
    *,
    name: str,
    qe_key_id: str,
    predecessor: str | None,
) -> dict[str, Any]:
    """The session that releases the volume key, command and environment to the measurement."""
    command = shlex.split(request.command) if request.command else list(converted.native_command)
    if not command:
        raise UsageError(
            "the native image has no ENTRYPOINT or CMD, so there is no command to run",
            hint='pass --command, e.g. --command="python3 /app/app.py"',
        )
    doc: dict[str, Any] = {
        "name": name,
        "version": SESSION_VERSION,
        "access_policy": {"read": ["CREATOR"], "update": ["CREATOR"]},
        "services": [
            {
                "name": request.service_name,
                "command": command,
                "environment": converted.native_env,
                "pwd": converted.native_workdir,
                "attestation": {"mrenclave": [converted.measurement]},
                "fspf_path": converted.fspf_path,
                "fspf_key": converted.key.reveal_hex(),
                "fspf_tag": converted.fspf_tag,
            }
        ],
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


def read_source(text: str, store: BlobStore) -> Image:
    """``--from``: a bare name means the local engine first, then its registry (as SCONE does)."""
    ref = parse(text, default="docker-daemon")
    if isinstance(ref, DaemonRef):
        if daemon.exists(ref):
            return daemon.read(ref, store)
        log.info("%s is not in the Docker engine; pulling it from its registry", text)
        try:
            return remote.read(parse_name(text), store)
        except ImageNotFound as err:
            raise ImageNotFound(
                f"--from={text}: no such image in the Docker engine or in its registry",
                hint="check the name with `docker images`, or build and push the image first",
            ) from err
    if isinstance(ref, RegistryRef):
        return remote.read(ref, store)
    raise UsageError(
        f"--from={text}: sconify_image reads from the Docker engine or a registry",
        hint="use `sconify image convert` for oci:, oci-archive: and docker-archive: sources",
    )


@dataclass
class _Sink:
    """Where the result goes: the engine (always for bare names) and/or a registry."""

    daemon_ref: DaemonRef | None
    registry_ref: RegistryRef | None
    image_id: str | None = None
    digest: str | None = None

    def write_untagged(self, image: Image) -> None:
        if self.registry_ref is not None:
            self.digest = str(remote.push(image, self.registry_ref))
        if self.daemon_ref is not None:
            self.image_id = daemon.load(image)

    def tag(self) -> None:
        if self.registry_ref is not None and self.digest is not None:
            remote.tag(self.registry_ref, Digest.parse(self.digest))
        if self.daemon_ref is not None and self.image_id is not None:
            daemon.tag(self.image_id, self.daemon_ref)

    def discard(self) -> None:
        """Remove the untagged image from the engine again (best effort)."""
        if self.daemon_ref is not None and self.image_id is not None:
            try:
                daemon.connect().images.remove(self.image_id, force=True)
            except Exception as err:  # the original failure matters more than this one
                log.warning("could not remove the untagged image %s: %s", self.image_id, err)


def _sink_for(request: LiftRequest) -> _Sink:
    ref: ImageRef = parse(request.target, default="docker-daemon")
    if isinstance(ref, DaemonRef):
        registry = parse_name(request.target) if request.push_image else None
        return _Sink(ref, registry)
    if isinstance(ref, RegistryRef):
        return _Sink(None, ref)
    raise UsageError(
        f"--to={request.target}: sconify_image writes to the Docker engine or a registry",
        hint="use `sconify image convert` for other destinations",
    )


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
    namespace = request.namespace or f"sconify-{secrets.token_hex(4)}"
    name = f"{namespace}/{request.session_name or default_session_name(request.target)}"
    config_id = f"{name}/{request.service_name}"
    sink = _sink_for(request)

    # The CAS is needed even without uploading: the image pins its key (contracts.md section 3).
    on_step(f"contacting the CAS at {request.cas} and the LAS at {request.las}")
    version = cas.version()
    qe = las.qe_pubkey()
    cas_host, _ = _split_addr(request.cas, 8081)
    enclave_addr = f"{cas_host}:{version.enclave_port}"

    with tempfile.TemporaryDirectory(prefix="sconify-", dir=workdir) as tmp:
        store = BlobStore(Path(tmp) / "store")
        on_step(f"reading {request.source}")
        native = read_source(request.source, store)
        on_step("encrypting and wrapping")
        work = Path(tmp) / "work"
        work.mkdir()
        converted = convert(
            native,
            ConversionRequest(
                binary=request.binary,
                dirs=request.dirs,
                settings=request.settings,
                config_id=config_id,
                cas_addr=enclave_addr,
                las_addr=request.las,
                cas_key_hash=version.cas_key_hash,
                authenticate=request.authenticate,
                extra_env=request.env,
            ),
            store,
            work,
        )
        predecessor = cas.current_hash(name)
        session_yaml = _to_yaml(
            session_document(
                request, converted, name=name, qe_key_id=qe.key_id, predecessor=predecessor
            )
        )
        if request.session_file is not None:
            _write_private(request.session_file, session_yaml)
        if request.dry_run:
            return _result(converted, config_id, name, None, sink, request, warnings)

        on_step(f"writing {request.target} (untagged until the session is stored)")
        sink.write_untagged(converted.image)
        try:
            session_hash = None
            if request.upload_session:
                _ensure_namespace(cas, namespace, request.create_namespace, warnings)
                on_step(f"storing session {name}")
                session_hash = cas.create_session(session_yaml)
        except (SconifyError, KeyboardInterrupt):
            sink.discard()
            raise
        sink.tag()
        return _result(converted, config_id, name, session_hash, sink, request, warnings)


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


def _write_private(path: Path, text: str) -> None:
    import os

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def _result(
    converted: Converted,
    config_id: str,
    name: str,
    session_hash: str | None,
    sink: _Sink,
    request: LiftRequest,
    warnings: Sequence[str],
) -> LiftResult:
    return LiftResult(
        config_id=config_id,
        session_name=name,
        session_hash=session_hash,
        measurement=converted.measurement,
        image=request.target,
        digest=str(converted.image.digest()),
        image_id=sink.image_id,
        pushed=sink.registry_ref.familiar() if sink.registry_ref and sink.digest else None,
        regions=converted.regions,
        rewritten_layers=converted.rewritten_layers,
        protected_files=converted.protected_files,
        warnings=list(warnings),
    )
