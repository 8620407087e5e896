"""Which migrations are pending, and what an edited applied migration means."""

import pytest

from devenv.seed.migrations import Migration, MigrationError, discover, pending


def write(folder, name, text):
    (folder / name).write_text(text)


def test_pending_in_filename_order(tmp_path):
    write(tmp_path, "002_more.sql", "select 2;")
    write(tmp_path, "001_init.sql", "select 1;")
    found = discover(tmp_path)
    assert [m.version for m in found] == ["001_init.sql", "002_more.sql"]
    assert [m.version for m in pending(found, {})] == ["001_init.sql", "002_more.sql"]
    applied = {"001_init.sql": found[0].checksum}
    assert [m.version for m in pending(found, applied)] == ["002_more.sql"]


def test_an_applied_migration_that_changed_is_an_error(tmp_path):
    write(tmp_path, "001_init.sql", "select 1;")
    found = discover(tmp_path)
    with pytest.raises(MigrationError, match="001_init.sql was changed after it was applied"):
        pending(found, {"001_init.sql": "something else"})


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(MigrationError, match="does not exist"):
        discover(tmp_path / "nope")


def test_checksum_is_of_the_content(tmp_path):
    write(tmp_path, "a.sql", "x")
    assert Migration.read(tmp_path / "a.sql").checksum == Migration.read(tmp_path / "a.sql").checksum
