"""Generate ``tests/vectors/jwe/cases.json`` (contracts.md sections 7.4 and 10).

Deterministic: keys and IVs derive from fixed seeds, so re-running reproduces the file byte for
byte. Run: ``.venv/bin/python tests/vectors/gen_jwe.py``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from sconify.crypto import _jose
from sconify.crypto.jwe import TeePrivateKey

OUT = Path(__file__).parent / "jwe" / "cases.json"
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _key(seed: str) -> ec.EllipticCurvePrivateKey:
    scalar = int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big") % (P256_ORDER - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


def _iv(seed: str) -> bytes:
    return hashlib.sha256(b"iv " + seed.encode()).digest()[:12]


def _config_plaintext() -> bytes:
    config = {
        "command": ["python3", "app.py", "--name", "wörld"],
        "environment": {"GREETING": "grüß dich", "PATH": "/usr/bin:/bin", "TOKEN": "s3cr3t"},
        "fspf_key": "66e7935397249112d1148e6ce98a396a8c96b3b0ae70708c16ff284c66f0821e",
        "fspf_path": "/sconify/fspf/fs.fspf",
        "fspf_tag": "5a0fe9bdcfed5c0391a707e05f6cfbeb",
        "injection_files": [
            {
                "content_b64": base64.b64encode(b"key=value\n").decode(),
                "mode": 384,
                "path": "/etc/x",
            }
        ],
        "pwd": "/app",
        "session_hash": hashlib.sha256(b"example session").hexdigest(),
    }
    return json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _plaintexts() -> list[tuple[str, bytes]]:
    big = bytes((i * 7 + 3) % 256 for i in range(100 * 1024))
    return [
        ("ascii", b"hello, attested world"),
        ("empty", b""),
        ("non-ascii", "Grüße, 世界! Ωμέγα 🚀 — naïve café".encode()),
        ("config", _config_plaintext()),
        ("100k", big),
        ("one-block-plus-one", b"A" * 17),
    ]


def build_cases() -> list[dict[str, object]]:
    """All cases, in a stable order."""
    cases: list[dict[str, object]] = []
    for name, plaintext in _plaintexts():
        tee = TeePrivateKey(_key(f"tee {name}"))
        token = _jose.seal_with(plaintext, tee.public_key.key, _key(f"epk {name}"), _iv(name))
        cases.append(
            {
                "jwe": token,
                "plaintext_b64": base64.b64encode(plaintext).decode("ascii"),
                "tee_private_jwk": tee.to_private_jwk(),
            }
        )
    return cases


def main() -> None:
    """Write the vectors file."""
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(build_cases(), indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
