"""Session rules of the CAS: who may create, update and read what, and secret lifecycles.

Errors are :class:`~sconify.errors.CasRefused` with the HTTP status and check name the API
answers with; messages never hold secret values.

A caller who holds no right on a session (not in its ``read``, ``update`` nor
``create_sessions`` list) gets exactly the answer a missing session gets (:func:`unknown`):
same status, same body, so names cannot be probed. A caller with some right knows the session
exists and is told which right it lacks (403).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sconify.cas.store import Conflict, SessionStore, StoredVersion, Transaction
from sconify.errors import CasRefused, SessionError
from sconify.session import SecretValue, Session, load_session, secret_values, session_hash
from sconify.session._names import valid_session_name
from sconify.session.model import AccessPolicy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Submitted:
    """The outcome of ``POST /v1/sessions``."""

    name: str
    hash: str
    created: bool


def _parse(yaml_text: str) -> Session:
    try:
        return load_session(yaml_text)
    except SessionError as err:
        raise CasRefused(err.message, status=400, check="session", hint=err.hint) from None


def unknown(name: str, *, namespace: bool = False) -> CasRefused:
    """The one answer for a session that does not exist or that the caller may not know of."""
    what = "namespace" if namespace else "session"
    return CasRefused(
        f"{what} {name!r} does not exist, or your identity holds no right on it",
        status=404,
        check=what,
        hint="check the name, and that its access_policy lists your identity "
        "(`sconify identity show`)",
    )


def _insider(policy: AccessPolicy, caller: str | None, creator: str) -> bool:
    """Whether ``caller`` holds any right on the session, and so may learn that it exists."""
    return any(policy.allows(right, caller, creator) for right in _RIGHTS)


_RIGHTS = ("read", "update", "create_sessions")


def _require_identity(identity: str | None) -> str:
    if identity is None:
        raise CasRefused(
            "this request needs a client certificate",
            status=401,
            check="identity",
            hint="enroll with POST /v1/identities and connect with the issued certificate",
        )
    return identity


def submit_session(store: SessionStore, yaml_text: str, identity: str | None) -> Submitted:
    """Create a session, or update it when ``predecessor`` names its current version."""
    session = _parse(yaml_text)
    caller = _require_identity(identity)
    new_hash = session_hash(session)
    with store.transaction() as tx:
        if session.predecessor is None:
            # The namespace first: whoever may not create in it must not learn what it holds.
            _check_namespace(tx, session, caller)
        current = tx.current(session.name)
        if session.predecessor is None:
            if current is not None:
                raise CasRefused(
                    f"session {session.name!r} already exists",
                    status=409,
                    check="predecessor",
                    hint="to update it, set predecessor to its current hash "
                    "(`sconify session update` does that)",
                )
            secrets = _secret_values(session, None)
        else:
            if current is None:
                raise unknown(session.name)
            head, old = current
            old_session = _parse(old.text)
            if not _insider(old_session.access_policy, caller, head.creator):
                raise unknown(session.name)
            if not old_session.access_policy.allows("update", caller, head.creator):
                raise CasRefused(
                    f"your identity may not update session {session.name!r}",
                    status=403,
                    check="access_policy",
                    hint="use an identity listed in its access_policy.update",
                )
            if head.current_hash != session.predecessor:
                raise CasRefused(
                    f"predecessor {session.predecessor} is not the current version of "
                    f"{session.name!r}",
                    status=409,
                    check="predecessor",
                    hint="someone updated it meanwhile: read it again and re-apply your change",
                )
            secrets = _secret_values(session, (old_session, old.secrets))
        try:
            tx.put_version(
                name=session.name,
                session_hash=new_hash,
                predecessor=session.predecessor,
                text=yaml_text,
                secrets=secrets,
                actor=caller,
            )
        except Conflict as err:
            raise CasRefused(str(err), status=409, check="predecessor") from None
    log.info(
        "%s session %s -> %s by %s",
        "created" if session.predecessor is None else "updated",
        session.name,
        new_hash,
        caller[:16],
    )
    return Submitted(name=session.name, hash=new_hash, created=session.predecessor is None)


def _check_namespace(tx: Transaction, session: Session, caller: str) -> None:
    namespace = session.namespace
    if namespace is None:
        return
    current = tx.current(namespace)
    if current is None:
        raise unknown(namespace, namespace=True)
    head, version = current
    policy = _parse(version.text).access_policy
    if not _insider(policy, caller, head.creator):
        raise unknown(namespace, namespace=True)
    if not policy.allows("create_sessions", caller, head.creator):
        raise CasRefused(
            f"your identity may not create sessions in namespace {namespace!r}",
            status=403,
            check="access_policy",
            hint="use an identity listed in the namespace's access_policy.create_sessions",
        )


def _secret_values(
    session: Session, previous: tuple[Session, dict[str, bytes]] | None
) -> dict[str, bytes]:
    # Made and migrated by the session package (scone.md section 4 rules, in reference order).
    try:
        return secret_values(session, previous)
    except SessionError as err:
        raise CasRefused(err.message, status=400, check="session", hint=err.hint) from None


def read_session(
    store: SessionStore, name: str, identity: str | None, *, version: str | None = None
) -> StoredVersion:
    """The current version (or ``version``) of ``name``, for callers in its read policy."""
    caller = _require_identity(identity)
    if not valid_session_name(name):
        raise unknown(name)
    with store.reader() as tx:
        current = tx.current(name)
        if current is None:
            raise unknown(name)
        head, latest = current
        policy = _parse(latest.text).access_policy
        if not _insider(policy, caller, head.creator):
            raise unknown(name)
        if not policy.allows("read", caller, head.creator):
            raise CasRefused(
                f"your identity may not read session {name!r}",
                status=403,
                check="access_policy",
                hint="use an identity listed in its access_policy.read",
            )
        if version is None or version == head.current_hash:
            return latest
        found = tx.version(name, version)
        if found is None:
            raise CasRefused(
                f"session {name!r} has no version {version}", status=404, check="session"
            )
        return found


def current_values(
    store: SessionStore, name: str, parse: Callable[[str], Session] | None = None
) -> tuple[Session, str, dict[str, SecretValue]]:
    """The current session, its hash and its secret values (for the enclave API).

    The store is read now, so updates and other replicas are seen at once; ``parse`` turns the
    stored text into a session (the enclave API passes a cache of validated sessions).
    """
    with store.reader() as tx:
        current = tx.current(name)
        if current is None:
            raise CasRefused(f"session {name!r} does not exist", status=404, check="session")
        head, version = current
    session = (parse or _parse)(version.text)
    values = {
        spec.name: SecretValue(spec, version.secrets[spec.name])
        for spec in session.secrets
        if spec.name in version.secrets
    }
    return session, head.current_hash, values


def public_values(store: SessionStore, name: str) -> dict[str, dict[str, str]]:
    """The ``export_public`` secrets of the current version: ``{name: {kind, value}}``.

    A session that exports nothing is answered as a missing one: only the sessions that
    publish values show that they exist.
    """
    if not valid_session_name(name):
        raise unknown(name)
    try:
        session, _, values = current_values(store, name)
    except CasRefused as err:
        if err.status == 404:
            raise unknown(name) from None
        raise
    if not any(spec.export_public for spec in session.secrets):
        raise unknown(name)
    return {
        secret.spec.name: {
            "kind": secret.spec.kind,
            "value": secret.spec.public_value(secret.value),
        }
        for secret in values.values()
        if secret.spec.export_public
    }
