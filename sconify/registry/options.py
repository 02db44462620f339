"""How to reach registries: the skopeo-like flags in one value the CLI passes through."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sconify.errors import UsageError
from sconify.registry.credentials import Credentials
from sconify.registry.retry import RetryPolicy
from sconify.registry.tls import CERTS_D

#: Blobs larger than this are uploaded in chunks of this size; smaller ones in one PUT.
DEFAULT_CHUNK_SIZE = 32 << 20


@dataclass(frozen=True)
class RegistryOptions:
    """Connection settings for one side of a transfer (skopeo's ``--src-*``/``--dest-*``).

    - ``creds``: ``--creds USER:PASS`` (:meth:`Credentials.parse`); ``no_creds``: ``--no-creds``.
    - ``authfile``: ``--authfile FILE`` (Docker's config.json format), used instead of the
      Docker client config.
    - ``cert_dir``: ``--cert-dir DIR`` (``*.crt`` CAs, ``*.cert``/``*.key`` client certificate);
      without it ``certs_d/<host[:port]>/`` is looked up.
    - ``tls_verify``: ``--tls-verify=false`` skips certificate checks and allows plain HTTP when
      the registry does not speak TLS.
    - ``retry``: the retry policy; ``chunk_size``: the upload chunk size (bytes); ``timeout``:
      seconds without progress before a request fails.
    """

    creds: Credentials | None = None
    no_creds: bool = False
    authfile: Path | None = None
    cert_dir: Path | None = None
    tls_verify: bool = True
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    chunk_size: int = DEFAULT_CHUNK_SIZE
    timeout: float = 60.0
    certs_d: tuple[Path, ...] = CERTS_D

    def __post_init__(self) -> None:
        if self.chunk_size < 1:
            raise UsageError("the upload chunk size must be positive", hint="give a size in bytes")
        if self.no_creds and self.creds is not None:
            raise UsageError(
                "--creds and --no-creds exclude each other", hint="give one of them, not both"
            )
