"""The content-addressed cache: keys change with every input, writes are atomic, re-runs resume."""
import subprocess
import sys
import textwrap

import numpy as np

from helpers.cache import Cache, content_key


def test_key_depends_on_bytes_model_and_every_parameter():
    base = content_key(b"img", "m1", prompt="dress", size=224)
    assert base == content_key(b"img", "m1", size=224, prompt="dress")  # order-free
    assert len({base, content_key(b"img2", "m1", prompt="dress", size=224),
                content_key(b"img", "m2", prompt="dress", size=224),
                content_key(b"img", "m1", prompt="skirt", size=224),
                content_key(b"img", "m1", prompt="dress", size=256)}) == 5


def test_round_trips_bytes_arrays_and_json(tmp_path):
    cache = Cache(tmp_path)
    key = content_key(b"x", "m")
    assert cache.get_bytes("masks", key) is None and not cache.has("masks", key)
    cache.put_bytes("masks", key, b"\x00\x01")
    vec = np.arange(6, dtype=np.float32).reshape(2, 3)
    cache.put_array("vectors", key, vec)
    cache.put_json("meta", key, {"a": [1, 2]})
    assert cache.get_bytes("masks", key) == b"\x00\x01"
    assert np.array_equal(cache.get_array("vectors", key), vec) and cache.get_array("vectors", key).dtype == np.float32
    assert cache.get_json("meta", key) == {"a": [1, 2]}
    stats = cache.stats()
    assert stats["masks"]["entries"] == 1 and stats["vectors"]["bytes"] > 0
    cache.clear()
    assert cache.stats() == {}


CRASH = textwrap.dedent("""
    import os, sys
    from helpers.cache import Cache
    cache = Cache(sys.argv[1])
    os.replace = lambda *a: os._exit(9)   # the process dies after writing, before the rename
    cache.put_bytes("masks", "ab" * 32, b"x" * 1_000_000)
""")


def test_crash_mid_write_leaves_no_entry_and_a_rerun_fills_it(tmp_path):
    proc = subprocess.run([sys.executable, "-c", CRASH, str(tmp_path)])
    assert proc.returncode == 9
    cache = Cache(tmp_path)
    key = "ab" * 32
    assert not cache.has("masks", key) and cache.get_bytes("masks", key) is None
    assert cache.stats().get("masks", {"entries": 0})["entries"] == 0  # the temp file is not an entry
    cache.put_bytes("masks", key, b"y" * 10)  # the re-run
    assert cache.get_bytes("masks", key) == b"y" * 10


def test_failed_write_removes_its_temp_file(tmp_path, monkeypatch):
    cache = Cache(tmp_path)

    def boom(*_):
        raise OSError("disk full")

    monkeypatch.setattr("helpers.cache.os.replace", boom)
    try:
        cache.put_bytes("masks", "cd" * 32, b"data")
    except OSError:
        pass
    assert list((tmp_path / "masks").rglob("*.*")) == []
