"""Crypto recipes: SCFS volumes, sealing to a TEE key. Primitives stay private (``_primitives``)."""
