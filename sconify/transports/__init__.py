"""Where images live: each module reads and writes :class:`sconify.image.Image` for one place.

``refs`` parses skopeo-style references; ``remote`` is a registry (``docker://``), ``daemon`` the
local Docker engine (``docker-daemon:``), ``layout`` an OCI layout directory (``oci:``) and
``archive`` the tar forms (``docker-archive:``, ``oci-archive:``).
"""
