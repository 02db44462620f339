"""The distribution wire protocol: auth challenges, tokens, uploads, retries and errors.

:class:`RegistryClient` speaks to one registry host; :mod:`sconify.transports.remote` builds
image reads and writes on top of it.
"""

from sconify.registry.auth import Credentials, load_credentials
from sconify.registry.client import FetchedManifest, RegistryClient
from sconify.registry.errors import RegistryResponseError
from sconify.registry.retry import RetryPolicy
from sconify.registry.stats import TransferStats

__all__ = [
    "Credentials",
    "FetchedManifest",
    "RegistryClient",
    "RegistryResponseError",
    "RetryPolicy",
    "TransferStats",
    "load_credentials",
]
