import hashlib
import io
import os
import stat

import pytest

from custodes.store.objects import ObjectStore, ObjectStoreError, SizeLimitExceeded

pytestmark = pytest.mark.no_database  # the PostgreSQL pass skips it: nothing here uses a database


@pytest.fixture
def store(tmp_path):
    s = ObjectStore(tmp_path / "objects")
    s.ensure()
    return s


def test_object_is_named_by_sha256_and_read_only(store, tmp_path):
    data = os.urandom(9 * 1024 * 1024 + 17)  # spans several chunks
    src = tmp_path / "a.bin"
    src.write_bytes(data)
    obj = store.put_file(src)
    assert obj.sha256 == hashlib.sha256(data).hexdigest()
    assert obj.path == tmp_path / "objects" / obj.sha256[:2] / obj.sha256[2:]
    assert obj.path.read_bytes() == data
    assert obj.created
    assert not obj.path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert store.rehash(obj.sha256) == obj.sha256
    assert list(store.tmp_dir.iterdir()) == []


def test_duplicate_never_replaces_stored_object(store):
    first = store.put_stream(io.BytesIO(b"evidence"))
    inode = first.path.stat().st_ino
    again = store.put_stream(io.BytesIO(b"evidence"))
    assert again.sha256 == first.sha256 and not again.created
    assert first.path.stat().st_ino == inode
    assert list(store.tmp_dir.iterdir()) == []


def test_size_limit_aborts_without_trace(store):
    with pytest.raises(SizeLimitExceeded):
        store.put_stream(io.BytesIO(b"x" * 1000), max_bytes=999)
    assert list(store.tmp_dir.iterdir()) == []
    assert list(store.iter_digests()) == []


def test_forged_digest_paths_are_refused(store):
    for bad in ("../../etc/passwd", "ab" * 31 + "/x", "G" * 64):
        with pytest.raises(ObjectStoreError):
            store.path_for(bad)


def dead_pid():
    import subprocess

    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_clean_partial_removes_only_temporaries(store):
    obj = store.put_stream(io.BytesIO(b"kept"))
    w = store.writer()
    w.write(b"half written")
    assert store.clean_partial() == []  # a live writer's temporary is never taken
    gone = w.tmp_path.with_name(f"{dead_pid()}-{w.tmp_path.name.split('-', 1)[1]}")
    w.tmp_path.rename(gone)
    assert store.clean_partial() == [gone]
    assert store.exists(obj.sha256)


def test_scratch_folder_of_a_killed_redaction_does_not_stop_the_next_cleanup(store):
    """kill -9 during `redact` left a folder in objects/.tmp, and every later ingest failed (IsADirectoryError)."""
    left = store.tmp_dir / f"{dead_pid()}-abc123"
    (left / "deep").mkdir(parents=True)
    (left / "deep" / "frame.png").write_bytes(b"plaintext")
    legacy = store.tmp_dir / "0123abcd.part"  # named before temporaries carried their writer's pid
    legacy.write_bytes(b"x")
    live = store.tmp_dir / f"{os.getpid()}-mine"
    live.mkdir()
    assert sorted(store.clean_partial()) == sorted([left, legacy])
    assert not left.exists() and live.is_dir()


def test_a_linked_tmp_folder_is_refused_not_followed(tmp_path):
    """objects/.tmp replaced by a link to another folder: the cleanup must not empty that folder."""
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "sub" / "keep.txt").write_text("precious")
    (victim / "123-old").mkdir()
    root = tmp_path / "objects"
    root.mkdir()
    (root / ".tmp").symlink_to(victim)
    store = ObjectStore(root)
    with pytest.raises(ObjectStoreError, match="not a plain folder"):
        store.clean_partial()
    assert (victim / "sub" / "keep.txt").read_text() == "precious" and (victim / "123-old").is_dir()


def test_another_hosts_temporaries_are_left_until_a_day_old(store):
    from custodes.store.objects import temp_prefix

    store.ensure()
    mine = store.tmp_dir / f"{temp_prefix()}x.part"
    mine.write_bytes(b"live")
    other = store.tmp_dir / "4242.deadbeef-x.part"  # a live writer on another machine sharing the case folder
    other.write_bytes(b"theirs")
    stale = store.tmp_dir / "4243.deadbeef-y.part"
    stale.write_bytes(b"old")
    os.utime(stale, (1, 1))
    assert store.clean_partial() == [stale]
    assert mine.exists() and other.exists()
