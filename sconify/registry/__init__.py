"""The distribution wire protocol: auth challenges, tokens, uploads, retries and errors.

:class:`RegistryClient` speaks to one registry host, configured by :class:`RegistryOptions`
(skopeo's ``--creds``, ``--authfile``, ``--cert-dir``, ``--tls-verify``, plus retries and the
upload chunk size); :mod:`sconify.transports.remote` builds image reads and writes on top of it
and reports what moved in a :class:`TransferStats`.

::

    RegistryClient ── Connection (scheme, redirects, retries) ── Authenticator (Basic, Bearer)
         │                                                         └─ credentials (helpers)
         └── BlobUpload (mount, PUT, chunked PATCH with resume)
"""

from sconify.registry.client import FetchedManifest, RegistryClient
from sconify.registry.credentials import Credentials, load_credentials
from sconify.registry.errors import RegistryResponseError
from sconify.registry.options import DEFAULT_CHUNK_SIZE, RegistryOptions
from sconify.registry.retry import RetryPolicy
from sconify.registry.stats import TransferStats
from sconify.registry.upload import Outcome

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "Credentials",
    "FetchedManifest",
    "Outcome",
    "RegistryClient",
    "RegistryOptions",
    "RegistryResponseError",
    "RetryPolicy",
    "TransferStats",
    "load_credentials",
]
