"""Session descriptions the CAS tests upload."""

from __future__ import annotations

import textwrap

MEASUREMENT = "5e" * 32
OTHER_MEASUREMENT = "6f" * 32
FSPF_KEY = "66e7935397249112d1148e6ce98a396a8c96b3b0ae70708c16ff284c66f0821e"
FSPF_TAG = "5a0fe9bdcfed5c0391a707e05f6cfbeb"


def namespace(name: str, *, create_sessions: str = "[CREATOR]", extra: str = "") -> str:
    """A namespace session."""
    return textwrap.dedent(
        f"""\
        name: {name}
        version: "0.3"
        access_policy:
          read: [CREATOR]
          update: [CREATOR]
          create_sessions: {create_sessions}
        """
    ) + textwrap.dedent(extra)


def service_session(
    name: str,
    *,
    qe_key_id: str,
    tolerate: str = "[simulation]",
    read: str = "[CREATOR]",
    update: str = "[CREATOR]",
    env_value: str = "one",
    predecessor: str | None = None,
) -> str:
    """A session with one service ``app`` that releases a volume key and secrets."""
    text = textwrap.dedent(
        f"""\
        name: {name}
        version: "0.3"
        access_policy:
          read: {read}
          update: {update}
        services:
          - name: app
            image_name: img
            command: python3 app.py --token "$$SCONE::token$$"
            environment:
              GREETING: "grüß dich"
              MODE: {env_value}
              KEY_HEX: "$$SCONE::key$$"
            pwd: /app
            attestation:
              mrenclave: [{MEASUREMENT}]
            fspf_path: /sconify/fspf/fs.fspf
            fspf_key: {FSPF_KEY}
            fspf_tag: {FSPF_TAG}
        images:
          - name: img
            injection_files:
              - path: /etc/app/key.bin
                content: "$$SCONE::key:bin$$"
                permission: 0o600
        secrets:
          - {{name: token, kind: ascii, size: 16}}
          - {{name: key, kind: binary, size: 32}}
          - {{name: shared, kind: ascii, value: "visible-to-all", export_public: true}}
        security:
          attestation:
            tolerate: {tolerate}
            trusted_scone_qe_pubkeys: [{qe_key_id}]
        """
    )
    if predecessor:
        text = f"predecessor: {predecessor}\n" + text
    return text
