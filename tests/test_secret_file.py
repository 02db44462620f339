"""``--session FILE`` and other files holding keys: never through a symlink, always 0600."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sconify.errors import ConversionError
from sconify.secret_file import write_secret_file


def test_an_existing_0644_file_ends_0600(tmp_path: Path) -> None:
    target = tmp_path / "session.yaml"
    target.write_text("old")
    target.chmod(0o644)
    old = os.umask(0)
    try:
        write_secret_file(target, b"fspf_key: 00", "--session")
    finally:
        os.umask(old)
    assert target.read_bytes() == b"fspf_key: 00"
    assert target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["session.yaml"]


def test_a_symlink_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    link = tmp_path / "session.yaml"
    link.symlink_to(victim)
    with pytest.raises(ConversionError, match="symbolic link") as caught:
        write_secret_file(link, b"key", "--session")
    assert caught.value.hint
    assert victim.read_text() == "precious" and link.is_symlink()


def test_a_dangling_symlink_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "session.yaml"
    link.symlink_to(tmp_path / "created-through-the-link")
    with pytest.raises(ConversionError, match="symbolic link"):
        write_secret_file(link, b"key", "--session")
    assert not (tmp_path / "created-through-the-link").exists()


@pytest.mark.parametrize("where", ["missing-dir/session.yaml", "."])
def test_an_unusable_path_is_one_error(tmp_path: Path, where: str) -> None:
    with pytest.raises(ConversionError) as caught:
        write_secret_file(tmp_path / where, b"key", "--session")
    assert caught.value.hint
