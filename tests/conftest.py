"""Shared fixtures: a small generated catalogue and an isolated workbook environment.

Everything here uses the project's own generated images, real files on disk and real ChromaDB;
nothing is mocked except Bedrock, which tests drive through botocore's Stubber.
"""
from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path
from typing import Callable

import pytest

SMALL_ITEMS = 12
SMALL_VIEWS = 4


# The files that take longest (`pytest --durations=0`), longest first, are handed to the workers
# first: `make test` runs `--dist loadfile --no-loadscope-reorder`, so a worker that finishes early
# takes the short files and both workers end together instead of one waiting on a long last file.
SLOW_FILES_FIRST = ("test_index.py", "test_pipeline.py", "test_app.py", "test_masking.py", "test_browser.py",
                    "test_search.py", "test_embedding.py", "test_provenance.py", "test_maskeval_cli.py",
                    "test_product.py", "test_hostile.py")


def pytest_collection_modifyitems(config, items) -> None:
    """Slow files first, in SLOW_FILES_FIRST's order; the rest, and the tests inside each file, keep
    their order (a stable sort)."""
    rank = {name: n for n, name in enumerate(SLOW_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def _shared_root(tmp_path_factory) -> Path:
    """A folder every pytest-xdist worker of this session sees (the workers' base folders share a
    parent); without xdist, this session's own base folder."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _built_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """`<shared root>/<name>`, filled by `build(folder)` once per session: the first worker to get
    the exclusive lock builds it, the others wait and find it done."""
    root = _shared_root(tmp_path_factory) / name
    root.mkdir(exist_ok=True)
    with open(root / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (root / ".done").exists():
                build(root)
                (root / ".done").touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return root


@pytest.fixture(scope="session")
def small_catalog(tmp_path_factory) -> Path:
    """A 12-item x 4-view generated catalogue (48 images), made once per test session and shared
    by the workers (read only: a test that changes a catalogue copies it first)."""
    from helpers import sample

    def build(root: Path) -> None:
        sample.generate_catalog(root / "sample", items=SMALL_ITEMS, views=SMALL_VIEWS, seed=1)

    return _built_once(tmp_path_factory, "small-catalog", build) / "sample"


@pytest.fixture(scope="session")
def seed_cache(tmp_path_factory, small_catalog) -> Path:
    """The cache a first `make run` leaves for the small catalogue (parser masks, cut-outs and
    vectors of every photo and product shot, and the reference cut-outs), made once per session.
    Why: masking and embedding cost about 18 s of every fixture and notebook that needs an index;
    the cache is content-addressed, so a copy of it is what a later notebook of `make run` reads.
    Tests of masking and caching themselves start cold."""
    from helpers.pipeline import run_pipeline
    from helpers.settings import load_settings

    def build(root: Path) -> None:
        run_pipeline(load_settings(toml_path=None, env={}, catalog=small_catalog, cache_dir=root / "cache",
                                   chroma_path=root / "chroma"), reference=True, progress=False)

    return _built_once(tmp_path_factory, "seed-cache", build) / "cache"


def warm_cache(seed: Path, cache_dir: Path) -> Path:
    """Copy the seed cache into `cache_dir` (a private copy: the test may add to it)."""
    shutil.copytree(seed, cache_dir, dirs_exist_ok=True)
    return cache_dir


@pytest.fixture()
def workbook_env(tmp_path, small_catalog, monkeypatch) -> dict[str, str]:
    """WORKBOOK_* variables pointing at the small catalogue and a private cache and index,
    set for this process and returned so subprocesses (papermill kernels) can inherit them."""
    env = {
        "WORKBOOK_CATALOG": str(small_catalog),
        "WORKBOOK_CACHE_DIR": str(tmp_path / "cache"),
        "WORKBOOK_CHROMA_PATH": str(tmp_path / "chroma"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture()
def warm_env(workbook_env, seed_cache) -> dict[str, str]:
    """workbook_env whose private cache starts as a copy of the seed cache: what a notebook after
    02_masking finds in `make run`."""
    warm_cache(seed_cache, Path(workbook_env["WORKBOOK_CACHE_DIR"]))
    return workbook_env


def build_reference_index(settings) -> dict:
    """Cut the catalogue out with its ground-truth masks, embed full photos and cut-outs with the
    local embedder, and index both into `settings`' private cache and Chroma folder. Shared by the
    index and search tests so that both test the same built index."""
    from PIL import Image

    from helpers import index as idx
    from helpers.catalog import load_catalog
    from helpers.cutting import cut_garment_views
    from helpers.embedding import LocalEmbedder, embed_catalog
    from helpers.maskers import ReferenceMasker

    table = load_catalog(settings.catalog).table
    ref = ReferenceMasker(table)
    masks = {i: ref.mask(Image.open(p), "dress", image_id=i) for i, p in zip(table["image_id"], table["image_path"])}
    cuts = cut_garment_views(table, masks)  # the pipeline's own recipe, as queries are cut
    embedder = LocalEmbedder(settings.cache_dir)
    runs = embed_catalog(table, cuts.cutouts, embedder, settings=settings, progress=False)
    report = idx.index_catalog(table, runs, settings=settings)
    return {"settings": settings, "table": table, "runs": runs, "report": report, "masks": masks,
            "cuts": cuts, "embedder": embedder}


def fake_aws_env(monkeypatch, tmp_path: Path) -> None:
    """Fake credentials from the environment only: no profile, config file, container or instance
    metadata, so a Bedrock test can never reach (or be billed to) a real account."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
