"""The session model: SCONE session language v0.3 (the subset sconify needs so far).

Every noun parses itself from the YAML tree (``parse``), naming the field path in its errors,
and turns back into its normalized form (``to_dict``), which is what gets hashed. Fields of the
full language that are not supported yet are refused by name rather than silently ignored: a
policy that is only partly enforced is worse than none.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from cryptography import x509

from sconify.session import _fields as f
from sconify.session._keys import spki_hash
from sconify.session._names import SERVICE_NAME, parent_namespace, valid_session_name
from sconify.session._yaml import YamlInt
from sconify.session.placeholders import find_placeholders, is_whole_placeholder
from sconify.session.secrets import CertificateSecret, SecretSpec, parse_secret

CREATOR = "CREATOR"
ANY = "ANY"
NONE = "NONE"
_SPECIAL_ENTRIES = (CREATOR, ANY, NONE)
_KEY_HASH = re.compile(r"[0-9a-fA-F]{64}")
_VERSION = re.compile(r"0\.3(\.\d{1,3})?")

#: ``tolerate`` values: SCONE's list plus ``simulation`` (sconify's sim quotes).
TOLERATIONS = frozenset(
    {
        "debug-mode",
        "hyperthreading",
        "insecure-igpu",
        "software-hardening-needed",
        "aepic-leak",
        "insecure-configuration",
        "outdated-tcb",
        "maa-managed-tcb",
        "simulation",
    }
)

DEFAULT_INJECTION_PERMISSION = 0o700
#: The longest certificate chain a session may make: a certificate and its issuers up to the
#: root (OpenSSL verifies up to 100; chains in use hold 2 to 4).
MAX_CHAIN_CERTIFICATES = 10


@dataclass(frozen=True)
class AccessPolicy:
    """Who may read, update, and create sessions inside this one (as a namespace).

    Entries: ``CREATOR``, ``ANY``, ``NONE``, or the hex SHA-256 of a client key's SPKI DER. A
    PEM certificate entry is normalized to the hash of its public key.
    """

    read: tuple[str, ...] = (CREATOR,)
    update: tuple[str, ...] = (CREATOR,)
    create_sessions: tuple[str, ...] = (CREATOR,)

    @classmethod
    def parse(cls, raw: Any, path: str) -> AccessPolicy:
        """Validate ``access_policy``; ``create_sessions`` defaults to the ``update`` list."""
        if raw is None:
            return cls()
        f.mapping(raw, path, allowed={"read", "update", "create_sessions"})
        read = _entries(raw.get("read"), f.child(path, "read"), (CREATOR,))
        update = _entries(raw.get("update"), f.child(path, "update"), (CREATOR,))
        create = _entries(raw.get("create_sessions"), f.child(path, "create_sessions"), update)
        return cls(read=read, update=update, create_sessions=create)

    def to_dict(self) -> dict[str, Any]:
        """Normalized form."""
        return {
            "create_sessions": list(self.create_sessions),
            "read": list(self.read),
            "update": list(self.update),
        }

    def allows(self, right: str, identity: str | None, creator: str) -> bool:
        """Whether ``identity`` (a key hash, or ``None`` without a client cert) holds ``right``.

        ``right`` is ``read``, ``update`` or ``create_sessions``; ``creator`` is the key hash
        that created the first version of the session.
        """
        entries: tuple[str, ...] = getattr(self, right)
        if ANY in entries:
            return True
        if identity is None:
            return False
        return any(e == identity or (e == CREATOR and identity == creator) for e in entries)


def _certificate_key_hash(pem: str, path: str) -> str:
    # SCONE: a certificate entry means its public key, so a renewed certificate keeps access.
    try:
        certificate = x509.load_pem_x509_certificate(pem.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise f.fail(path, "is not a readable PEM certificate") from None
    return spki_hash(certificate)


def _entries(raw: Any, path: str, default: tuple[str, ...]) -> tuple[str, ...]:
    if raw is None:
        return default
    out: list[str] = []
    for index, item in enumerate(f.seq(raw, path)):
        entry = f.text(item, f.child(path, index))
        if entry in _SPECIAL_ENTRIES:
            out.append(entry)
        elif _KEY_HASH.fullmatch(entry):
            out.append(entry.lower())
        elif "-----BEGIN CERTIFICATE-----" in entry:
            out.append(_certificate_key_hash(entry, f.child(path, index)))
        else:
            raise f.fail(
                f.child(path, index),
                f"{entry[:80]!r} is not CREATOR, ANY, NONE, a 64-hex key hash or a PEM certificate",
                hint="`sconify identity show` prints your key hash",
            )
    if not out:
        raise f.fail(path, "must not be empty", hint="write [NONE] to grant this right to nobody")
    if NONE in out and len(out) > 1:
        raise f.fail(path, "NONE cannot be combined with other entries")
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class Service:
    """One service: what the shim runs, and which measurements may receive it."""

    name: str
    command: tuple[str, ...]
    mrenclaves: tuple[str, ...]
    image_name: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    pwd: str = "/"
    fspf_path: str | None = None
    fspf_key: str | None = None
    fspf_tag: str | None = None

    _FIELDS = frozenset(
        {
            "name",
            "image_name",
            "command",
            "environment",
            "pwd",
            "mrenclaves",
            "attestation",
            "fspf_path",
            "fspf_key",
            "fspf_tag",
        }
    )

    @classmethod
    def parse(cls, raw: Any, path: str) -> Service:
        """Validate one ``services[]`` item."""
        f.mapping(raw, path, allowed=set(cls._FIELDS), required=frozenset({"name", "command"}))
        name = f.text(raw["name"], f.child(path, "name"))
        if not SERVICE_NAME.fullmatch(name):
            raise f.fail(f.child(path, "name"), f"{name!r} is not a valid service name")
        fspf = {k: raw.get(k) for k in ("fspf_path", "fspf_key", "fspf_tag")}
        if any(v is not None for v in fspf.values()) and any(v is None for v in fspf.values()):
            missing = [k for k, v in fspf.items() if v is None]
            raise f.fail(
                f.child(path, missing[0]),
                "is required when any of fspf_path, fspf_key, fspf_tag is given",
            )
        return cls(
            name=name,
            image_name=f.optional_text(raw.get("image_name"), f.child(path, "image_name")),
            command=_command(raw["command"], f.child(path, "command")),
            environment=_environment(raw.get("environment"), f.child(path, "environment")),
            pwd=f.absolute_path(raw.get("pwd", "/"), f.child(path, "pwd")),
            mrenclaves=_mrenclaves(raw, path),
            fspf_path=(
                None
                if fspf["fspf_path"] is None
                else f.absolute_path(fspf["fspf_path"], f.child(path, "fspf_path"))
            ),
            fspf_key=_key_or_placeholder(fspf["fspf_key"], f.child(path, "fspf_key"), 32),
            fspf_tag=_key_or_placeholder(fspf["fspf_tag"], f.child(path, "fspf_tag"), 16),
        )

    def to_dict(self) -> dict[str, Any]:
        """Normalized form: ``mrenclaves`` folded into ``attestation.mrenclave``."""
        out: dict[str, Any] = {
            "attestation": {"mrenclave": list(self.mrenclaves)},
            "command": list(self.command),
            "environment": dict(self.environment),
            "name": self.name,
            "pwd": self.pwd,
        }
        optional = {
            "image_name": self.image_name,
            "fspf_path": self.fspf_path,
            "fspf_key": self.fspf_key,
            "fspf_tag": self.fspf_tag,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        return out

    def text_fields(self, path: str) -> list[tuple[str, str]]:
        """(path, text) of every field that may hold placeholders and must stay text."""
        fields = [(f.child(f.child(path, "command"), i), a) for i, a in enumerate(self.command)]
        fields += [
            (f.child(f.child(path, "environment"), k), v) for k, v in self.environment.items()
        ]
        for key in ("fspf_key", "fspf_tag"):
            value = getattr(self, key)
            if value is not None and is_whole_placeholder(value):
                fields.append((f.child(path, key), value))
        return fields


def _command(raw: Any, path: str) -> tuple[str, ...]:
    if isinstance(raw, str):
        try:
            argv = shlex.split(raw)
        except ValueError as err:
            raise f.fail(path, f"cannot be split into arguments: {err}") from None
    else:
        argv = [
            f.text(a, f.child(path, i), allow_numbers=True) for i, a in enumerate(f.seq(raw, path))
        ]
    if not argv:
        raise f.fail(path, "must name at least the program to run")
    for index, arg in enumerate(argv):
        if "\0" in arg:
            raise f.fail(f.child(path, index), "must not contain NUL")
    return tuple(argv)


def _environment(raw: Any, path: str) -> dict[str, str]:
    if raw is None:
        return {}
    f.mapping(raw, path, allowed=set(raw) if isinstance(raw, Mapping) else set())
    out: dict[str, str] = {}
    for key, value in raw.items():
        if not key or "=" in key or "\0" in key:
            raise f.fail(f.child(path, key), "is not a valid environment variable name")
        text = f.text(value, f.child(path, key), allow_numbers=True)
        if "\0" in text:
            raise f.fail(f.child(path, key), "must not contain NUL")
        out[key] = text
    return dict(sorted(out.items()))


def _mrenclaves(raw: Mapping[str, Any], path: str) -> tuple[str, ...]:
    found: list[str] = []
    attestation = raw.get("attestation")
    if attestation is not None:
        apath = f.child(path, "attestation")
        f.mapping(attestation, apath, allowed={"mrenclave"})
        value = attestation.get("mrenclave")
        mpath = f.child(apath, "mrenclave")
        items = [value] if isinstance(value, str | int) else f.seq(value, mpath)
        for index, item in enumerate(items):
            ipath = mpath if isinstance(value, str | int) else f.child(mpath, index)
            found.append(f.hex_string(item, ipath, nbytes=32))
    legacy = f.child(path, "mrenclaves")
    for index, item in enumerate(f.seq(raw.get("mrenclaves"), legacy)):
        found.append(f.hex_string(item, f.child(legacy, index), nbytes=32))
    if not found:
        raise f.fail(
            f.child(f.child(path, "attestation"), "mrenclave"),
            "is required: without a measurement no enclave can ever receive this service",
            hint="`sconify image measure IMAGE` prints it",
        )
    return tuple(dict.fromkeys(found))


def _key_or_placeholder(raw: Any, path: str, nbytes: int) -> str | None:
    if raw is None:
        return None
    value = f.text(raw, path, allow_numbers=True)
    if is_whole_placeholder(value):
        return value
    return f.hex_string(value, path, nbytes=nbytes)


@dataclass(frozen=True)
class InjectionFile:
    """A file the shim writes before starting the app (content may hold placeholders)."""

    path: str
    content: str
    permission: int = DEFAULT_INJECTION_PERMISSION

    @classmethod
    def parse(cls, raw: Any, path: str) -> InjectionFile:
        """Validate ``{path, content, permission?}`` (the path-only form is not supported)."""
        if isinstance(raw, str):
            raise f.fail(
                path,
                "the path-only form (a file read through the file shield) is not supported yet",
                hint="give {path, content}",
            )
        f.mapping(
            raw, path, allowed={"path", "content", "permission"}, required=frozenset({"path"})
        )
        return cls(
            path=f.absolute_path(raw["path"], f.child(path, "path")),
            content=f.text(raw.get("content", ""), f.child(path, "content"), allow_numbers=True),
            permission=_permission(raw.get("permission"), f.child(path, "permission")),
        )

    def to_dict(self) -> dict[str, Any]:
        """Normalized form."""
        return {"content": self.content, "path": self.path, "permission": self.permission}


def _permission(raw: Any, path: str) -> int:
    if raw is None:
        return DEFAULT_INJECTION_PERMISSION
    if isinstance(raw, YamlInt):
        # YAML 1.1 reads 0600 as octal already; 600 written plainly means octal too.
        text = raw.source
    elif isinstance(raw, str):
        text = raw
    else:
        raise f.fail(path, "must be an octal mode such as 0o600")
    digits = text[2:] if text.lower().startswith("0o") else text
    if not re.fullmatch(r"[0-7]{1,4}", digits):
        raise f.fail(path, f"{text!r} is not an octal mode such as 0o600")
    return int(digits, 8)


@dataclass(frozen=True)
class Image:
    """An image entry: files injected into the services that run it."""

    name: str
    injection_files: tuple[InjectionFile, ...] = ()

    @classmethod
    def parse(cls, raw: Any, path: str) -> Image:
        """Validate one ``images[]`` item."""
        f.mapping(raw, path, allowed={"name", "injection_files"}, required=frozenset({"name"}))
        name = f.text(raw["name"], f.child(path, "name"))
        if not SERVICE_NAME.fullmatch(name):
            raise f.fail(f.child(path, "name"), f"{name!r} is not a valid image name")
        files_path = f.child(path, "injection_files")
        files = tuple(
            InjectionFile.parse(item, f.child(files_path, i))
            for i, item in enumerate(f.seq(raw.get("injection_files"), files_path))
        )
        seen: set[str] = set()
        for index, item in enumerate(files):
            if item.path in seen:
                raise f.fail(f.child(f.child(files_path, index), "path"), "is injected twice")
            seen.add(item.path)
        return cls(name=name, injection_files=files)

    def to_dict(self) -> dict[str, Any]:
        """Normalized form."""
        return {"injection_files": [i.to_dict() for i in self.injection_files], "name": self.name}


@dataclass(frozen=True)
class SecurityPolicy:
    """``security.attestation``: what a quote may be and which quoting keys are trusted."""

    tolerate: tuple[str, ...] = ()
    trusted_scone_qe_pubkeys: tuple[str, ...] = ()
    ignore_advisories: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: Any, path: str) -> SecurityPolicy:
        """Validate ``security``."""
        if raw is None:
            return cls()
        f.mapping(raw, path, allowed={"attestation"})
        apath = f.child(path, "attestation")
        att = raw.get("attestation")
        if att is None:
            return cls()
        f.mapping(
            att,
            apath,
            allowed={"mode", "tolerate", "trusted_scone_qe_pubkeys", "ignore_advisories"},
        )
        mode = f.text(att.get("mode", "hardware"), f.child(apath, "mode"))
        if mode != "hardware":
            raise f.fail(f.child(apath, "mode"), f"mode {mode!r} is not supported yet")
        tpath = f.child(apath, "tolerate")
        tolerate: list[str] = []
        for index, item in enumerate(f.seq(att.get("tolerate"), tpath)):
            value = f.text(item, f.child(tpath, index))
            if value not in TOLERATIONS:
                raise f.fail(
                    f.child(tpath, index),
                    f"{value!r} is not a known toleration",
                    hint=f"known: {', '.join(sorted(TOLERATIONS))}",
                )
            tolerate.append(value)
        kpath = f.child(apath, "trusted_scone_qe_pubkeys")
        keys = [
            f.hex_string(item, f.child(kpath, i), nbytes=32)
            for i, item in enumerate(f.seq(att.get("trusted_scone_qe_pubkeys"), kpath))
        ]
        advisories = _advisories(att.get("ignore_advisories"), f.child(apath, "ignore_advisories"))
        if advisories == ("*",) and "debug-mode" not in tolerate:
            # SCONE: the wildcard is honoured only together with debug-mode.
            raise f.fail(
                f.child(apath, "ignore_advisories"),
                '"*" is allowed only when tolerate lists debug-mode',
                hint="list the advisories by id (INTEL-SA-xxxxx)",
            )
        return cls(
            tolerate=tuple(sorted(set(tolerate))),
            trusted_scone_qe_pubkeys=tuple(sorted(set(keys))),
            ignore_advisories=advisories,
        )

    def to_dict(self) -> dict[str, Any]:
        """Normalized form."""
        return {
            "attestation": {
                "ignore_advisories": list(self.ignore_advisories),
                "mode": "hardware",
                "tolerate": list(self.tolerate),
                "trusted_scone_qe_pubkeys": list(self.trusted_scone_qe_pubkeys),
            }
        }


def _advisories(raw: Any, path: str) -> tuple[str, ...]:
    if raw == "*":
        return ("*",)
    return tuple(sorted({f.text(a, f.child(path, i)) for i, a in enumerate(f.seq(raw, path))}))


@dataclass(frozen=True)
class Session:
    """A parsed, validated session description."""

    name: str
    version: str
    predecessor: str | None = None
    access_policy: AccessPolicy = field(default_factory=AccessPolicy)
    services: tuple[Service, ...] = ()
    images: tuple[Image, ...] = ()
    secrets: tuple[SecretSpec, ...] = ()
    security: SecurityPolicy = field(default_factory=SecurityPolicy)

    _FIELDS = frozenset(
        {
            "name",
            "version",
            "predecessor",
            "access_policy",
            "services",
            "images",
            "secrets",
            "security",
        }
    )

    @classmethod
    def parse(cls, raw: Any) -> Session:
        """Validate a whole description (already read from YAML)."""
        f.mapping(raw, "", allowed=set(cls._FIELDS), required=frozenset({"name", "version"}))
        name = f.text(raw["name"], "name")
        if not valid_session_name(name):
            raise f.fail(
                "name",
                f"{name!r} is not a valid session name",
                hint="segments of letters, digits, '_', '-', '.', '~' (1-128), joined by '/'",
            )
        version = f.text(raw["version"], "version", allow_numbers=True)
        if not _VERSION.fullmatch(version):
            raise f.fail("version", f"{version!r} is not supported", hint='write version: "0.3"')
        predecessor = raw.get("predecessor")
        session = cls(
            name=name,
            version=version,
            predecessor=None
            if predecessor is None
            else f.hex_string(predecessor, "predecessor", nbytes=32),
            access_policy=AccessPolicy.parse(raw.get("access_policy"), "access_policy"),
            services=tuple(
                Service.parse(s, f.child("services", i))
                for i, s in enumerate(f.seq(raw.get("services"), "services"))
            ),
            images=tuple(
                Image.parse(s, f.child("images", i))
                for i, s in enumerate(f.seq(raw.get("images"), "images"))
            ),
            secrets=tuple(
                parse_secret(s, f.child("secrets", i))
                for i, s in enumerate(f.seq(raw.get("secrets"), "secrets"))
            ),
            security=SecurityPolicy.parse(raw.get("security"), "security"),
        )
        session._check_references()
        return session

    @property
    def namespace(self) -> str | None:
        """The enclosing namespace (``a/b`` for ``a/b/c``), or ``None`` at top level."""
        return parent_namespace(self.name)

    def service(self, name: str) -> Service | None:
        """The service called ``name``, if any."""
        return self._by_name[0].get(name)

    def image(self, name: str) -> Image | None:
        """The image called ``name``, if any."""
        return self._by_name[1].get(name)

    def secret(self, name: str) -> SecretSpec | None:
        """The secret declared as ``name``, if any."""
        return self._by_name[2].get(name)

    @cached_property
    def _by_name(
        self,
    ) -> tuple[dict[str, Service], dict[str, Image], dict[str, SecretSpec]]:
        # Lookups by name are made once per reference and per placeholder: a list scan each
        # time made a session with thousands of them quadratic. The first of a name wins.
        services: dict[str, Service] = {}
        images: dict[str, Image] = {}
        secrets: dict[str, SecretSpec] = {}
        for service in self.services:
            services.setdefault(service.name, service)
        for image in self.images:
            images.setdefault(image.name, image)
        for spec in self.secrets:
            secrets.setdefault(spec.name, spec)
        return services, images, secrets

    def to_dict(self) -> dict[str, Any]:
        """The normalized description: what :func:`~sconify.session.session_hash` hashes."""
        out: dict[str, Any] = {
            "access_policy": self.access_policy.to_dict(),
            "images": [i.to_dict() for i in self.images],
            "name": self.name,
            "secrets": [s.to_dict() for s in self.secrets],
            "security": self.security.to_dict(),
            "services": [s.to_dict() for s in self.services],
            "version": self.version,
        }
        if self.predecessor is not None:
            out["predecessor"] = self.predecessor
        return out

    def _check_references(self) -> None:
        f.names_unique([s.name for s in self.services], "services", "service")
        f.names_unique([i.name for i in self.images], "images", "image")
        f.names_unique([s.name for s in self.secrets], "secrets", "secret")
        self._check_secret_references()
        for index, service in enumerate(self.services):
            spath = f.child("services", index)
            if service.image_name is not None and self.image(service.image_name) is None:
                raise f.fail(
                    f.child(spath, "image_name"),
                    f"refers to the image {service.image_name!r}, which is not under images:",
                )
            for fpath, value in service.text_fields(spath):
                self._check_placeholders(fpath, value, text_only=True)
        for index, image in enumerate(self.images):
            ipath = f.child(f.child("images", index), "injection_files")
            for findex, item in enumerate(image.injection_files):
                cpath = f.child(f.child(ipath, findex), "content")
                self._check_placeholders(cpath, item.content, text_only=False)

    def _check_secret_references(self) -> None:
        for index, spec in enumerate(self.secrets):
            for field_name, target, kind in spec.references():
                rpath = f.child(f.child("secrets", index), field_name)
                found = self.secret(target)
                if found is None:
                    raise f.fail(rpath, f"refers to the undeclared secret {target!r}")
                if found.kind != kind:
                    raise f.fail(rpath, f"refers to {target!r} of kind {found.kind}, not {kind}")
        self.secrets_in_order()
        self._check_chain_lengths()

    def secrets_in_order(self) -> tuple[SecretSpec, ...]:
        """The secrets, each after those it references (so generation can use their values).

        Refuses a cycle (an issuer chain that comes back to itself), naming its first member.
        """
        return self._secret_order

    @cached_property
    def _secret_order(self) -> tuple[SecretSpec, ...]:
        # Depth-first with an explicit stack: an issuer chain as long as the list of secrets
        # must not become as many nested calls.
        position = {spec.name: index for index, spec in reversed(list(enumerate(self.secrets)))}
        order: list[SecretSpec] = []
        state: dict[str, str] = {}
        for start in self.secrets:
            if start.name in state:
                continue
            state[start.name] = "visiting"
            stack = [(start, iter(start.references()))]
            while stack:
                spec, pending = stack[-1]
                for _, target, _ in pending:
                    dependency = self.secret(target)
                    if dependency is None or state.get(dependency.name) == "done":
                        continue
                    if state.get(dependency.name) == "visiting":
                        raise f.fail(
                            f.child(f.child("secrets", position[dependency.name]), "issuer"),
                            f"the secret {dependency.name!r} is part of a reference cycle",
                            hint="a CA without issuer is self-signed: end the chain there",
                        )
                    state[dependency.name] = "visiting"
                    stack.append((dependency, iter(dependency.references())))
                    break
                else:
                    stack.pop()
                    state[spec.name] = "done"
                    order.append(spec)
        return tuple(order)

    def _check_chain_lengths(self) -> None:
        # Every issued certificate carries its whole issuer chain, so a chain of n CAs costs
        # n^2 certificates to store and parse: 1,500 of them made gigabytes.
        length: dict[str, int] = {}
        for spec in self.secrets_in_order():
            if not isinstance(spec, CertificateSecret):
                continue
            if spec.value is not None:
                length[spec.name] = max(1, spec.value.count("-----BEGIN CERTIFICATE-----"))
            else:
                length[spec.name] = 1 + (length.get(spec.issuer, 0) if spec.issuer else 0)
            if length[spec.name] > MAX_CHAIN_CERTIFICATES:
                index = next(i for i, s in enumerate(self.secrets) if s is spec)
                field_name = "issuer" if spec.value is None else "value"
                raise f.fail(
                    f.child(f.child("secrets", index), field_name),
                    f"the certificate chain of {spec.name!r} (it, its issuer, and theirs up to "
                    f"the root) would hold {length[spec.name]} certificates, more than the "
                    f"{MAX_CHAIN_CERTIFICATES} allowed",
                    hint="issue it from a CA nearer the root (chains in use hold 2 to 4)",
                )

    def _check_placeholders(self, path: str, value: str, *, text_only: bool) -> None:
        for ref in find_placeholders(value):
            spec = self.secret(ref.name)
            if spec is None:
                raise f.fail(
                    path,
                    f"refers to the undeclared secret {ref.name!r}",
                    hint="declare it under secrets:",
                )
            if not spec.knows_format(ref.fmt):
                raise f.fail(
                    path,
                    f"asks for the unknown format {ref.fmt!r} of secret {ref.name!r}",
                    hint=f"{spec.kind} secrets have: {', '.join(spec.formats)}",
                )
            if text_only and not spec.is_text(ref.fmt):
                raise f.fail(
                    path,
                    f"uses the binary format {ref.fmt!r} of secret {ref.name!r} in a text field",
                    hint="use a text format here (:hex, :base64, :pem, :crt ...); binary ones "
                    "only in injection files",
                )
