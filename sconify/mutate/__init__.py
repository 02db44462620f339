"""Pure conversion steps: each takes an image (or its parts) and returns new ones.

Nothing here talks to a registry, an engine or a CAS; new blobs go into the caller's store.
"""
