"""Secret values across a session's life: made at create, migrated or remade at update."""

from __future__ import annotations

from collections.abc import Mapping

from sconify.session.model import Session


def secret_values(
    session: Session,
    previous: tuple[Session, Mapping[str, bytes]] | None = None,
) -> dict[str, bytes]:
    """The value of every secret of ``session``.

    ``previous`` is the version being replaced and its values (``None`` at create). Each kind's
    :meth:`~sconify.session.secrets.SecretSpec.migrate` decides what is kept (scone.md section
    4: ascii/binary when name and kind match, private-key only with ``migrate: true`` on both
    sides, certificates never); everything else is made anew, in reference order, so a
    certificate is issued for the key and by the CA it names, as they are *now*.

    Raises :class:`~sconify.errors.SessionError` when a given value does not fit (a given
    certificate for another key); messages never hold secret values.
    """
    values: dict[str, bytes] = {}
    for spec in session.secrets_in_order():
        kept = None
        if previous is not None:
            old_session, old_values = previous
            old_spec = old_session.secret(spec.name)
            if old_spec is not None and spec.name in old_values:
                kept = spec.migrate(old_spec, old_values[spec.name])
        values[spec.name] = kept if kept is not None else spec.initial_value(values)
    return {spec.name: values[spec.name] for spec in session.secrets}
