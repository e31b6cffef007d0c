"""Hostile input, second round (#24 points 3-6): the index never answers for photos it did not see,
results are never silently replaced, only regular files inside the catalogue are read, and every
command answers bad input in one line with exit status 2.

Real data throughout: generated catalogues, real files (FIFOs, /dev/zero, .mat files), ChromaDB on
disk and a real `chroma run` server, `python -m helpers` through its `main`.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.io import savemat

from helpers import provenance, sample, settings as settings_module
from helpers.__main__ import main as helpers_main
from helpers.catalog import load_catalog
from helpers.errors import ImageError, IndexMismatch, SearchError
from helpers.images import open_image
from helpers.settings import load_settings

from test_ccp import NAMES


def _collection(tmp_path: Path, name: str = "garment-test"):
    from helpers.index import get_client

    client = get_client(load_settings(toml_path=None, env={}, chroma_path=tmp_path / "chroma"))
    return client.get_or_create_collection(name, metadata={"hnsw:space": "cosine"})


# --------------------------------------------------------------------------- 3. the index


def test_a_photo_replaced_by_another_of_the_same_size_is_a_changed_catalogue(small_catalog, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(small_catalog, copy)
    settings = load_settings(toml_path=None, env={}, catalog=copy)
    built = provenance.recipe(settings, load_catalog(copy).table, "local-embedder")
    col = _collection(tmp_path)
    provenance.record(col, built)
    photos = sorted((copy / "images").glob("*.jpg"))
    old, new = photos[0], next(p for p in photos[1:] if p.stat().st_size < photos[0].stat().st_size)
    size, stamp = old.stat().st_size, old.stat().st_mtime_ns
    data = new.read_bytes()
    old.write_bytes(data + b"\0" * (size - len(data)))   # another photo, padded to the very same byte size
    os.utime(old, ns=(stamp, stamp))                     # and the old modification time
    assert old.stat().st_size == size and open_image(old).size
    want = provenance.recipe(settings, load_catalog(copy).table, "local-embedder")
    with pytest.raises(IndexMismatch, match="catalogue changed"):
        provenance.check(col, want, view="garment", fix="python -m helpers run")


def test_masker_local_and_parser_accept_each_others_index(small_catalog, tmp_path):
    table = load_catalog(small_catalog).table
    for built_with, asked in (("local", "parser"), ("parser", "local")):
        col = _collection(tmp_path, f"garment-{built_with}")
        provenance.record(col, provenance.recipe(load_settings(toml_path=None, env={}, catalog=small_catalog,
                                                               masker=built_with), table, "e"))
        want = provenance.recipe(load_settings(toml_path=None, env={}, catalog=small_catalog, masker=asked), table, "e")
        provenance.check(col, want, view="garment", fix="rebuild")   # the same model: no refusal
    with pytest.raises(IndexMismatch, match="masker"):               # another model still is refused
        provenance.check(col, {**want, "masker": "pose"}, view="garment", fix="rebuild")


def test_two_writers_on_a_chroma_server_are_never_both_inside_the_write_lock(tmp_path):
    from helpers.chromaserver import chroma_server

    with chroma_server(tmp_path / "srv", log=tmp_path / "chroma.log") as (host, port):
        settings = load_settings(toml_path=None, env={}, chroma_host=host, chroma_port=port)
        inside, both, spans = [], [], []

        def writer(n: int) -> None:
            with provenance.write_lock(settings, timeout=60):
                inside.append(n)
                both.append(len(inside) > 1)
                start = time.monotonic()
                time.sleep(0.5)
                spans.append((start, time.monotonic()))
                inside.remove(n)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(spans) == 3 and not any(both), "two writers were inside write_lock at once"
        spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
        with pytest.raises(provenance.IndexBusy, match="being written by"):   # a held lock makes others wait, then fail
            with provenance.write_lock(settings):
                with provenance.write_lock(settings, timeout=0.5):
                    pass


def test_a_server_lock_left_by_a_killed_writer_is_taken_over(tmp_path):
    import chromadb

    from helpers.chromaserver import chroma_server

    with chroma_server(tmp_path / "srv", log=tmp_path / "chroma.log") as (host, port):
        settings = load_settings(toml_path=None, env={}, chroma_host=host, chroma_port=port)
        chromadb.HttpClient(host=host, port=port).create_collection(
            provenance.SERVER_LOCK, metadata={"holder": "pid 1 (killed)", "beat": time.time() - 3600})
        with provenance.server_lock(settings, timeout=5) as me:
            assert str(os.getpid()) in me


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_chroma_server_dies_when_its_holder_is_sigkilled(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        from helpers.chromaserver import chroma_server
        with chroma_server({str(tmp_path / 'srv')!r}, log={str(tmp_path / 'chroma.log')!r}) as (host, port):
            print(port, flush=True)
            time.sleep(600)
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[1])
    try:
        port = int(holder.stdout.readline())
        (server,) = _children(holder.pid)
        assert "chroma" in Path(f"/proc/{server}/cmdline").read_text()
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        deadline = time.monotonic() + 20
        while Path(f"/proc/{server}").exists() and time.monotonic() < deadline:
            try:  # reap it if it became ours (it will not: it is re-parented to init)
                os.waitpid(server, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.2)
        alive = Path(f"/proc/{server}").exists() and "Z" not in Path(f"/proc/{server}/stat").read_text().split()[2]
        if alive:
            os.kill(server, signal.SIGKILL)   # do not leave it behind even when the test fails
        assert not alive, f"`chroma run` (pid {server}, port {port}) outlived its SIGKILLed parent"
    finally:
        if holder.poll() is None:
            holder.kill()


# --------------------------------------------------------------------------- 5. only regular files inside


def _manifest_catalog(small_catalog: Path, tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    cat = tmp_path / "cat"
    shutil.copytree(small_catalog, cat)
    return cat, pd.read_csv(cat / "manifest.csv", dtype=str, keep_default_na=False)


def test_manifest_and_csv_rows_outside_the_catalogue_are_refused(small_catalog, tmp_path):
    cat, manifest = _manifest_catalog(small_catalog, tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "private.jpg"
    shutil.copyfile(cat / manifest["image_path"][0], secret)
    manifest.loc[0, "image_path"] = "../outside/private.jpg"
    manifest.loc[1, "image_path"] = str(secret)   # absolute
    manifest.loc[2, "garment_mask_path"] = "../outside/private.jpg"
    manifest.to_csv(cat / "manifest.csv", index=False)
    table, skipped = load_catalog(cat)
    assert not table["image_path"].str.contains("outside").any()
    assert set(manifest["image_id"][:3]) & set(table["image_id"]) == set()
    assert list(skipped["reason"]).count("outside_catalog") == 3
    assert "outside the catalogue folder" in skipped["message"].iloc[0]

    own = tmp_path / "own"
    own.mkdir()
    shutil.copyfile(secret, own / "a.jpg")
    pd.DataFrame({"image": ["a.jpg", "../outside/private.jpg", str(secret)], "item_id": ["1", "1", "2"]}).to_csv(
        own / "labels.csv", index=False)
    table, skipped = load_catalog(own)
    assert list(table["image_id"]) == ["a"] and list(skipped["reason"]) == ["outside_catalog"] * 2


def _in_thread(fn, timeout: float = 60.0):
    box: dict = {}

    def call() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    t = threading.Thread(target=call, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "it hung (it read a FIFO or a device)"
    if "error" in box:
        raise box["error"]
    return box["value"]


def test_fifos_and_devices_are_refused_before_reading(small_catalog, tmp_path):
    cat, manifest = _manifest_catalog(small_catalog, tmp_path)
    fifo = cat / "images" / "pipe.jpg"
    os.mkfifo(fifo)
    (cat / "images" / "zero.jpg").symlink_to("/dev/zero")
    manifest.loc[0, "image_path"] = "images/pipe.jpg"
    manifest.loc[1, "image_path"] = "images/zero.jpg"
    manifest.to_csv(cat / "manifest.csv", index=False)
    table, skipped = _in_thread(lambda: load_catalog(cat))
    assert len(table) == len(manifest[manifest["view"] == "worn"]) - 2
    assert list(skipped["reason"]) == ["not_a_file", "not_a_file"]
    assert "named pipe" in skipped["message"][0] and "device" in skipped["message"][1]
    for bad in (fifo, Path("/dev/zero")):
        with pytest.raises(ImageError) as err:
            _in_thread(lambda: open_image(bad))
        assert err.value.reason == "not_a_file"
    query = tmp_path / "query.jpg"
    os.mkfifo(query)
    with pytest.raises(SearchError) as err:
        _in_thread(lambda: __import__("helpers.search").search.search(query))
    assert err.value.reason == "not_a_file"


def test_sample_force_deletes_only_what_the_generator_wrote(tmp_path, capsys):
    args = ["--items", "2", "--views", "2", "--size", "64x96", "--workers", "1", "--force"]
    own = tmp_path / "own"
    (own / "holiday").mkdir(parents=True)
    (own / "holiday" / "me.jpg").write_bytes(b"my photo")
    (own / "sample.json").write_text("{}")
    assert sample.main(["--out", str(own), *args]) == 2
    assert (own / "holiday" / "me.jpg").read_bytes() == b"my photo", "own photos were deleted"

    gen = tmp_path / "gen"
    assert sample.main(["--out", str(gen), *args]) == 0
    (gen / "images" / "mine.jpg").write_bytes(b"added by the user")
    (gen / "notes.txt").write_text("keep me")
    capsys.readouterr()
    assert sample.main(["--out", str(gen), *args]) == 2
    err = capsys.readouterr().err
    assert "did not write" in err and ("notes.txt" in err or "mine.jpg" in err)
    assert (gen / "images" / "mine.jpg").read_bytes() == b"added by the user" and (gen / "notes.txt").exists()
    (gen / "images" / "mine.jpg").unlink()
    (gen / "notes.txt").unlink()
    assert sample.main(["--out", str(gen), *args]) == 0   # only generated files: redrawn
    assert len(pd.read_csv(gen / "manifest.csv")) == 6


# --------------------------------------------------------------------------- 6. one line, exit 2


def _ccp(root: Path, *, mat: str = "ok", labels: bool = True, annotations: bool = True) -> Path:
    """A tiny Clothing Co-Parsing tree: one held-out photo with a dress, damaged as asked."""
    from PIL import Image

    (root / "photos").mkdir(parents=True)
    Image.new("RGB", (60, 90), (200, 200, 200)).save(root / "photos" / "0005.jpg")
    if labels:
        savemat(root / "label_list.mat", {"label_list": np.array([NAMES], dtype=object)})
    if annotations:
        (root / "annotations" / "pixel-level").mkdir(parents=True)
        gt = np.zeros((90, 60), np.uint8)
        gt[20:70, 15:45] = NAMES.index("dress")
        target = root / "annotations" / "pixel-level" / "0005.mat"
        if mat == "ok":
            savemat(target, {"groundtruth": gt})
        elif mat == "corrupt":
            target.write_bytes(b"MATLAB 5.0 MAT-file" + os.urandom(300))
        elif mat == "no_groundtruth":
            savemat(target, {"labels": gt})
    return root


def _file(tmp: Path) -> Path:
    (tmp / "a_file").write_text("x")
    return tmp / "a_file"


EVAL = ["masks", "eval", "--dataset", "ccp"]
NOENV = lambda t: {}  # noqa: E731
# (name, argv(tmp), environment(tmp), workbook.toml bytes, what the one line must say)
CASES = [
    ("search, bad settings", lambda t: ["search", "q.jpg"], lambda t: {"WORKBOOK_WORKERS": "0"}, None,
     "workers must be a positive integer"),
    ("masks eval, bad settings", lambda t: [*EVAL, str(_ccp(t / "c"))], lambda t: {"WORKBOOK_WORKERS": "0"}, None,
     "workers must be a positive integer"),
    ("search, cache_dir below a file", lambda t: ["search", "q.jpg"],
     lambda t: {"WORKBOOK_CACHE_DIR": str(_file(t) / "cache")}, None, "which is a file"),
    ("ccp, corrupt .mat", lambda t: [*EVAL, str(_ccp(t / "c", mat="corrupt"))], NOENV, None,
     "0005.mat is not a readable MATLAB file"),
    ("ccp, .mat without groundtruth", lambda t: [*EVAL, str(_ccp(t / "c", mat="no_groundtruth"))], NOENV, None,
     "holds no variable 'groundtruth'"),
    ("ccp, no label_list.mat", lambda t: [*EVAL, str(_ccp(t / "c", labels=False))], NOENV, None,
     "label_list.mat is missing"),
    ("ccp, missing path", lambda t: [*EVAL, str(t / "nowhere")], NOENV, None, "does not exist"),
    ("ccp, unknown prompt", lambda t: [*EVAL, str(_ccp(t / "c")), "--prompt", "unknownthing"], NOENV, None,
     "choose one of dress"),
    ("ccp, no annotations/", lambda t: [*EVAL, str(_ccp(t / "c", annotations=False))], NOENV, None,
     "no annotations/pixel-level/"),
    ("ccp, --prompt person", lambda t: [*EVAL, str(_ccp(t / "c")), "--prompt", "person"], NOENV, None,
     "maskers cut out garments"),
    ("ccp, --limit -1", lambda t: [*EVAL, str(_ccp(t / "c")), "--limit", "-1"], NOENV, None, "must be >= 1"),
    ("run, garment_prompt list", lambda t: ["run", "--no-index"], NOENV, b'garment_prompt = ["dress"]\n',
     'must be one value, not a list; write e.g. garment_prompt = "dress"'),
    ("search, toml not UTF-8", lambda t: ["search", "q.jpg"], NOENV, b'garment_prompt = "\xff\xfedress"\n',
     "workbook.toml is not UTF-8"),
]


@pytest.mark.parametrize("name,argv,env,toml,says", CASES, ids=[c[0] for c in CASES])
def test_every_command_answers_bad_input_in_one_line(name, argv, env, toml, says, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORKBOOK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("WORKBOOK_CHROMA_PATH", str(tmp_path / "chroma"))
    for key, value in env(tmp_path).items():
        monkeypatch.setenv(key, value)
    if toml is not None:   # the project's workbook.toml, at a private path
        (tmp_path / "workbook.toml").write_bytes(toml)
        monkeypatch.setattr(settings_module.load_settings, "__defaults__",
                            (tmp_path / "workbook.toml", None, None))
    try:
        rc = helpers_main(argv(tmp_path))
    except SystemExit as exit_:   # argparse's own refusal (usage line + one error line)
        rc = exit_.code
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("usage:")
             and not ln.startswith("  ") and "Warning" not in ln]
    assert rc == 2, f"{name}: exit status {rc}, stderr {err!r}"
    assert "Traceback" not in err
    assert len(lines) == 1 and says in lines[0], err
