"""The CAS: sessions and secrets, released only to attested services.

``server`` runs it (client API with mutual TLS, enclave API with TLS); ``client`` talks to it;
``identity`` is the caller's key; ``schema`` holds what both sides exchange.
"""
