"""The one error hierarchy of sconify.

Every failure a user can meet is a :class:`SconifyError`. Each carries a short statement of what
failed and a hint that says what to do next; the CLI renders them in one place
(:mod:`sconify.cli.render`) and exits 1 (or 2 for :class:`UsageError`).

::

    SconifyError
    ├── UsageError            bad flags or arguments (exit 2)
    ├── ImageError            an image, reference or transport problem
    │   ├── ImageNotFound
    │   ├── DigestMismatch    bytes whose sha256 is not what the descriptor says
    │   └── UnsafeLayer       a tar entry that escapes the root or cannot be handled safely
    ├── RegistryError         the distribution protocol (auth, HTTP errors, uploads)
    ├── ConversionError       the transform cannot be done as asked (missing --binary, --dir...)
    ├── CryptoError           a recipe refused its input (bad key, failed authentication)
    ├── SessionError          a session description is invalid
    ├── ServiceError          CAS/LAS unreachable or refusing
    │   └── CasRefused        the CAS answered with an error (conflict, forbidden, not found)
    └── UnexpectedError       anything else that escaped, wrapped by the CLI (a bug to report)
"""

from __future__ import annotations


class SconifyError(Exception):
    """Base of every error sconify raises for a user to read.

    ``message`` says what failed; ``hint`` says what to do about it.
    """

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """Return the text shown to a human: the message, then what to do."""
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message

    def to_json(self) -> dict[str, str]:
        """Return a machine-readable form for ``--json`` output."""
        out = {"error": type(self).__name__, "message": self.message}
        if self.hint:
            out["hint"] = self.hint
        return out


class UsageError(SconifyError):
    """The command line itself is wrong (exit code 2)."""

    exit_code = 2


class ImageError(SconifyError):
    """An image cannot be read, parsed or written."""


class ImageNotFound(ImageError):
    """The image, tag or blob does not exist where the reference points."""


class DigestMismatch(ImageError):
    """Content does not hash to the digest that names it."""


class UnsafeLayer(ImageError):
    """A layer entry escapes the root or cannot be processed safely."""


class RegistryError(SconifyError):
    """The registry refused a request or spoke the protocol wrongly."""


class ConversionError(SconifyError):
    """The conversion cannot be done with the given options and image."""


class CryptoError(SconifyError):
    """A crypto recipe refused its input. Deliberately says nothing about why (no oracle)."""


class SessionError(SconifyError):
    """A session description is invalid; the message names the field."""


class ServiceError(SconifyError):
    """A CAS or LAS could not be reached or answered nonsense."""


class CasRefused(ServiceError):
    """The CAS answered with an error.

    ``status`` is the HTTP status, ``check`` the failed check the CAS named (if any).
    """

    def __init__(
        self, message: str, *, status: int, check: str | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.check = check


class UnexpectedError(SconifyError):
    """An exception nobody turned into a :class:`SconifyError` (a bug, or an input not checked
    yet); the CLI wraps it so that the user still gets one error line, not a traceback."""
