"""Planning the protection: which entries of which layers are dropped besides the regions."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sconify.errors import ConversionError
from sconify.image import BlobStore
from sconify.mutate.fsview import scan_layers
from sconify.mutate.protect import ProtectionPlan, plan_protection, resolve_regions
from tests.support.layers import Entry, make_layer

SECRET = b"the protected bytes"
APP = [Entry("app", "dir"), Entry("app/secret.txt", data=SECRET)]


def _plan(tmp: Path, *layers: list[Entry], dirs: tuple[str, ...] = ("/app",)) -> ProtectionPlan:
    store = BlobStore(tmp / "store")
    view = scan_layers([make_layer(store, tmp, list(entries)) for entries in layers])
    return plan_protection(view, resolve_regions(view, dirs), dirs)


def test_a_hidden_copy_of_protected_bytes_is_dropped_from_its_layer(tmp_path: Path) -> None:
    # RUN mv /build /app: the old path is whited out, its bytes stay in the lower layer
    plan = _plan(
        tmp_path,
        [Entry("build", "dir"), Entry("build/secret.txt", data=SECRET)],
        [Entry(".wh.build"), *APP],
    )
    assert plan.touched == (0, 1)
    assert plan.hidden[0] == frozenset({"/build/secret.txt"})


def test_what_lay_below_a_dir_before_it_became_a_symlink_is_dropped(tmp_path: Path) -> None:
    plan = _plan(
        tmp_path,
        [Entry("app", "dir"), Entry("app/old.txt", data=b"an older secret")],
        [
            Entry(".wh.app"),
            Entry("srv", "dir"),
            Entry("srv/app", "dir"),
            Entry("srv/app/new.txt", data=b"x"),
            Entry("app", "symlink", target="/srv/app"),
        ],
    )
    assert plan.regions == ("/srv/app",)
    assert "/app/old.txt" in plan.hidden[0]


def test_a_visible_copy_stays_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        plan = _plan(tmp_path, [*APP, Entry("tmp", "dir"), Entry("tmp/copy", data=SECRET)])
    assert "/tmp/copy" not in plan.hidden.get(0, frozenset())
    assert "/tmp/copy has the same bytes as the protected /app/secret.txt" in caplog.text


def test_a_path_twice_in_a_layer_whose_hidden_copy_holds_protected_bytes_is_refused(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConversionError, match="twice"):
        _plan(tmp_path, [*APP, Entry("tmp/x", data=SECRET), Entry("tmp/x", data=b"public")])
