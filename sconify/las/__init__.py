"""The LAS: a local attestation service that signs simulated quotes (contracts.md section 6).

``server`` runs it, ``client`` talks to it, ``quote`` is the quote format both it and the CAS
read.
"""
