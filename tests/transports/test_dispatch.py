"""One image through every place by reference text alone, ending where it started."""

import subprocess

from sconify.image import BlobStore
from sconify.transports import dispatch
from sconify.transports.refs import parse


def test_every_transport_round_trip(registry, docker_client, sample, tmp_path):
    places = [
        f"oci:{tmp_path / 'layout'}:v1",
        f"oci-archive:{tmp_path / 'oci.tar'}:v1",
        f"docker://{registry.addr}/dispatch/app:v1",
        f"docker-archive:{tmp_path / 'docker.tar'}:sconify-test/dispatch:v1",
        "docker-daemon:sconify-test/dispatch:v1",
    ]
    image = sample
    try:
        for i, place in enumerate(places):
            ref = parse(place)
            dispatch.write(image, ref)
            image = dispatch.read(ref, BlobStore(tmp_path / f"s{i}"))
            image.validate(deep=True)
            assert image.config_bytes() == sample.config_bytes(), place
            assert [x.diff_id for x in image.layers] == [x.diff_id for x in sample.layers]
        # the registry and the layouts keep the manifest digest; the engine keeps the image id
        assert dispatch.read(parse(places[2]), BlobStore(tmp_path / "r")).digest() == (
            sample.digest()
        )
    finally:
        subprocess.run(["docker", "rmi", "-f", "sconify-test/dispatch:v1"], check=False)
