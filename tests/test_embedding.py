"""The local embedder (ONNX vs torch), its committed ONNX model, and the batch step's cache and failures.

Everything runs on the generated catalogue's real images.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from helpers import embedding
from helpers.cache import Cache
from helpers.catalog import load_catalog
from helpers.embedding import EmbedError, Embedder, LocalEmbedder, embed_catalog, embed_images, get_embedder
from helpers.settings import load_settings
from notebook_checks import assert_seen


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory) -> Path:
    """The embedder's cache folder (the model itself is the committed ONNX file)."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="module")
def embedder(model_cache) -> LocalEmbedder:
    return LocalEmbedder(model_cache)


@pytest.fixture(scope="module")
def table(small_catalog) -> pd.DataFrame:
    return load_catalog(small_catalog).table


def _settings(tmp_path: Path, catalog: Path, **kw):
    return load_settings(toml_path=None, env={}, catalog=catalog, cache_dir=tmp_path / "cache",
                         chroma_path=tmp_path / "chroma", **kw)


def test_onnx_features_match_eager_torch_on_catalogue_photos(embedder, table):
    images = [Image.open(p).convert("RGB") for p in table["image_path"][:8]]
    cnn = embedder.cnn_features(images)
    assert cnn.shape == (8, embedding.CNN_DIM) == (8, 1280)
    assert np.abs(cnn - embedder.embed_torch(images, cnn_only=True)).max() < 1e-4   # the export itself
    onnx = embedder.embed(images)
    assert onnx.shape == (8, embedding.LOCAL_DIM) == (8, 1280 + 64) and onnx.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-5)
    assert np.abs(onnx - embedder.embed_torch(images)).max() < 1e-4
    # the first block of the embedding is the CNN vector, scaled by sqrt(1 - colour weight)
    np.testing.assert_allclose(onnx[:, :1280], cnn * np.sqrt(1 - embedding.COLOUR_WEIGHT), atol=1e-6)
    # different photos give different vectors (the model is not returning a constant)
    sims = onnx @ onnx.T
    assert sims[~np.eye(8, dtype=bool)].max() < 0.999


def test_the_embedder_runs_the_committed_checked_onnx(model_cache, embedder):
    from helpers import onnxmodels

    vec = embedder.embed([Image.new("RGB", (64, 64), "red")])
    assert embedding.export_onnx(model_cache) == onnxmodels.verified("embedder")
    assert embedder.session._model_path == str(onnxmodels.verified("embedder"))   # the session runs that file
    assert vec.shape == (1, embedding.LOCAL_DIM)
    assert not (model_cache / "models").exists()   # nothing exported into the cache any more


@pytest.fixture(scope="module")
def garment_cutouts(table) -> dict[str, Image.Image]:
    """Ground-truth-mask cut-outs of the small catalogue, made the way the pipeline makes them."""
    from helpers.cutting import cut
    from helpers.maskers import ReferenceMasker

    ref = ReferenceMasker(table)
    return {i: cut(Image.open(p).convert("RGB"), ref.mask(Image.open(p), "dress", image_id=i), "square",
                   margin=0.06, size=256) for i, p in zip(table["image_id"], table["image_path"])}


def _hue_shifted(image: Image.Image, degrees: int) -> Image.Image:
    """The same picture with every non-white pixel's hue turned: only the colour changes."""
    import cv2

    rgb = np.asarray(image)
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0].astype(int) + degrees // 2) % 180     # OpenCV hue is 0-179
    out = np.where(rgb.min(axis=2, keepdims=True) >= embedding.WHITE_LEVEL, rgb, cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB))
    return Image.fromarray(out)


def _colour(images) -> np.ndarray:
    return embedding.colour_histogram(embedding.letterbox_batch(images))


def test_colour_part_separates_a_hue_change_the_cnn_barely_sees(embedder, table, garment_cutouts):
    """Why the colour part exists: a cut-out and the same cut-out in another hue look alike to
    the ImageNet CNN, but not to the a*b* histogram - while another photo of the same dress,
    from another shoot with other light, stays close in colour."""
    rows = table[table["colour"].isin(["red", "pink", "coral", "rust", "mustard", "emerald", "cobalt", "teal"])]
    shifts = 0
    for item, views in rows.groupby("item_id"):
        if views["shoot_id"].nunique() < 2:
            continue
        a = views.iloc[0]
        b = views[views["shoot_id"] != a["shoot_id"]].iloc[0]
        cut_a, cut_b = garment_cutouts[a["image_id"]], garment_cutouts[b["image_id"]]
        turned = _hue_shifted(cut_a, 120)
        col = _colour([cut_a, turned, cut_b])
        cnn = embedder.cnn_features([cut_a, turned])
        assert float(col[0] @ col[1]) < 0.5, item                      # another hue: far apart in colour
        assert float(col[0] @ col[2]) > float(col[0] @ col[1]) + 0.3, item  # same dress, other light: close
        assert float(cnn[0] @ cnn[1]) > float(col[0] @ col[1]), item   # the CNN alone barely tells them apart
        full = embedder.embed([cut_a, turned])
        assert float(full[0] @ full[1]) < float(cnn[0] @ cnn[1]), item  # the embedding now does
        shifts += 1
    assert shifts >= 2  # the small catalogue has several such items; the test must have looked at some


def test_colour_part_shrugs_off_a_white_balance_cast_and_ignores_white_padding(garment_cutouts):
    """A shoot's warm or cool light (RGB gains like the generator's strongest) moves the
    histogram little, and the white around a cut-out is not counted: the same garment on a
    larger white canvas has the same colour vector."""
    cuts = list(garment_cutouts.values())[:12]
    cast_sims = []
    for image in cuts:
        rgb = np.asarray(image).astype(np.float32)
        white = rgb.min(axis=2, keepdims=True) >= embedding.WHITE_LEVEL
        warm = np.where(white, rgb, np.clip(rgb * np.float32([1.08, 1.015, 0.91]), 0, 254)).astype(np.uint8)
        padded = Image.new("RGB", (image.width * 2, image.height), (255, 255, 255))
        padded.paste(image, (image.width // 2, 0))
        col = _colour([image, Image.fromarray(warm), padded, _hue_shifted(image, 120)])
        cast_sims.append(float(col[0] @ col[1]))
        assert cast_sims[-1] > 0.7
        if float(col[0] @ col[3]) < 0.9:  # a coloured garment (turning a grey one's hue changes nothing)
            assert cast_sims[-1] > float(col[0] @ col[3])  # a cast moves it less than a hue change
        assert float(col[0] @ col[2]) > 0.98
    assert np.mean(cast_sims) > 0.8  # measured: about 0.85 on the small catalogue
    # all-white input keeps every pixel instead of dividing by zero
    blank = _colour([Image.new("RGB", (50, 50), (255, 255, 255))])
    assert np.isfinite(blank).all() and abs(float(np.linalg.norm(blank)) - 1) < 1e-5


def test_a_used_embedder_pickles_without_its_session(embedder, table):
    import pickle

    image = Image.open(table["image_path"][0]).convert("RGB")
    before = embedder.embed([image])            # the session exists now
    copy = pickle.loads(pickle.dumps(embedder))  # e.g. sent to a worker process
    assert copy._session is None and copy.model_id == embedder.model_id and copy.dim == embedder.dim
    np.testing.assert_allclose(copy.embed([image]), before, atol=1e-6)


def test_preprocess_letterboxes_on_white_keeping_the_whole_photo():
    tall = Image.new("RGB", (100, 300), (200, 0, 0))
    x = embedding.preprocess([tall])
    assert x.shape == (1, 3, 224, 224) and x.dtype == np.float32
    white = (1.0 - embedding.IMAGENET_MEAN) / embedding.IMAGENET_STD
    red = (np.array([200 / 255, 0, 0], dtype=np.float32) - embedding.IMAGENET_MEAN) / embedding.IMAGENET_STD
    np.testing.assert_allclose(x[0, :, 112, 2], white, atol=1e-5)      # left pad is white
    np.testing.assert_allclose(x[0, :, 0, 112], red, atol=0.05)        # top row is photo: nothing cropped
    np.testing.assert_allclose(x[0, :, 223, 112], red, atol=0.05)      # bottom row too


def test_embed_images_caches_by_content_and_records_failures(tmp_path, small_catalog, table, embedder):
    settings = _settings(tmp_path, small_catalog)
    cache = Cache(settings.cache_dir)
    bad = tmp_path / "truncated.jpg"
    bad.write_bytes(Path(table["image_path"][0]).read_bytes()[:500])
    images = {i: p for i, p in zip(table["image_id"][:6], table["image_path"][:6])}
    images.update({"broken": bad, "gone": tmp_path / "missing.jpg"})

    run = embed_images(images, embedder, view="full", cache=cache, settings=settings, progress=False)
    assert run.ids == list(table["image_id"][:6]) and run.vectors.shape == (6, embedding.LOCAL_DIM)
    assert (run.calls, run.cached) == (6, 0)
    reasons = run.failures.set_index("image_id")["reason"].to_dict()
    assert set(reasons) == {"broken", "gone"}
    assert reasons["gone"] == "unreadable" and reasons["broken"] in ("truncated", "unreadable")

    again = embed_images(images, embedder, view="full", cache=cache, settings=settings, progress=False)
    assert (again.calls, again.cached) == (0, 6)                       # a cache hit costs no call
    np.testing.assert_array_equal(again.vectors, run.vectors)
    # the same image under the other view is a different cache entry
    garment = embed_images({"x": table["image_path"][0]}, embedder, view="garment", cache=cache,
                           settings=settings, progress=False)
    assert garment.calls == 1


def test_a_changed_image_gets_a_new_vector(tmp_path, small_catalog, table, embedder):
    settings = _settings(tmp_path, small_catalog)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(Path(table["image_path"][0]).read_bytes())
    first = embed_images({"a": photo}, embedder, view="full", settings=settings, progress=False)
    Image.open(photo).transpose(Image.Transpose.FLIP_LEFT_RIGHT).rotate(10, fillcolor="white").save(photo)
    second = embed_images({"a": photo}, embedder, view="full", settings=settings, progress=False)
    assert second.calls == 1 and not np.allclose(first.vectors, second.vectors)


def test_embed_catalog_embeds_full_and_garment_and_carries_mask_failures(tmp_path, small_catalog, table, embedder):
    from helpers.cutting import NoGarment, cut_catalog
    from helpers.maskers import ReferenceMasker

    settings = _settings(tmp_path, small_catalog)
    sub = table.head(8)
    ref = ReferenceMasker(sub)
    masks = {i: ref.mask(Image.open(p), "dress", image_id=i) for i, p in zip(sub["image_id"], sub["image_path"])}
    masks[sub["image_id"].iloc[-1]] = np.zeros_like(masks[sub["image_id"].iloc[-1]])  # nothing found
    cuts = cut_catalog(sub, masks, "square", margin=0.06)
    assert len(cuts.failures) == 1 and cuts.failures["reason"].iloc[0] == NoGarment("x").reason

    runs = embed_catalog(sub, cuts.cutouts, embedder, settings=settings, mask_failures=cuts.failures,
                         progress=False)
    assert len(runs["full"].ids) == 8 and len(runs["garment"].ids) == 7
    assert runs["garment"].failures[["image_id", "reason"]].values.tolist() == [[sub["image_id"].iloc[-1], "no_garment"]]
    # the cut-out and the full photo of one image are different vectors
    full, garment = runs["full"].as_dict(), runs["garment"].as_dict()
    first = sub["image_id"].iloc[0]
    assert float(full[first] @ garment[first]) < 0.95
    # re-running is all cache hits (cut-outs are keyed on their pixels)
    cuts2 = cut_catalog(sub, masks, "square", margin=0.06)
    again = embed_catalog(sub, cuts2.cutouts, embedder, settings=settings, mask_failures=cuts2.failures,
                          progress=False)
    assert again["full"].calls == 0 and again["garment"].calls == 0


class _PickyEmbedder:
    """A real (tiny) embedder: mean colour, refusing very dark images like a content filter."""

    model_id = "test-mean-colour"
    dim = 3
    price_per_call = 0.0
    batch_size = 4

    def __init__(self):
        self.calls = 0

    def embed(self, images):
        self.calls += len(images)
        out = []
        for im in images:
            mean = np.asarray(im, dtype=np.float32).reshape(-1, 3).mean(0) + 1.0
            if mean.sum() < 30:
                raise EmbedError("content_filter", "refused: the image is too dark")
            out.append(mean / np.linalg.norm(mean))
        return np.stack(out).astype(np.float32)


def test_one_refused_image_fails_alone_and_the_batch_goes_on(tmp_path, small_catalog):
    settings = _settings(tmp_path, small_catalog)
    images = {f"c{i}": Image.new("RGB", (32, 32), (40 * i, 90, 30)) for i in range(6)}
    images["dark"] = Image.new("RGB", (32, 32), (0, 0, 0))
    emb = _PickyEmbedder()
    run = embed_images(images, emb, view="garment", settings=settings, progress=False)
    assert run.ids == [f"c{i}" for i in range(6)]
    assert run.failures.values.tolist() == [["dark", "content_filter", "refused: the image is too dark"]]
    assert isinstance(emb, Embedder)


def test_get_embedder_follows_the_backend(tmp_path, small_catalog, monkeypatch):
    local = get_embedder(_settings(tmp_path, small_catalog))
    assert isinstance(local, LocalEmbedder) and isinstance(local, Embedder)
    assert (local.model_id, local.dim, local.price_per_call) == ("local-effnet-lite0-ab64-onnx", 1344, 0.0)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")  # boto3 client creation only; no call is made
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    remote = get_embedder(_settings(tmp_path, small_catalog, backend="bedrock", embed_dim=384))
    assert type(remote).__name__ == "BedrockEmbedder" and isinstance(remote, Embedder)
    assert (remote.model_id, remote.dim) == ("amazon.titan-embed-image-v1", 384) and remote.price_per_call > 0


def test_notebook_04_runs_and_shows_shoot_vs_item_clustering(warm_env, tmp_path):
    """04_embedding executes end to end on the small catalogue (ground-truth masks, so it does
    not depend on the masker) and its recorded numbers show the point of the notebook."""
    from helpers.workbook.notebooks import read_records, run_notebook

    out = tmp_path / "04_embedding.ipynb"
    run_notebook(Path(__file__).resolve().parents[1] / "notebooks" / "04_embedding.ipynb", out,
                 {"masker": "reference"})
    assert_seen(out)  # every figure shown, no table cell cut
    rec = read_records(out)
    assert rec["embedded_full"] == rec["embedded_garment"] == 48
    assert rec["onnx_vs_torch_max_abs_diff"] < 1e-4
    assert rec["second_run_calls"] == 0
    assert rec["nn_same_shoot_full"] > rec["nn_same_shoot_garment"]
    assert rec["nn_same_item_garment"] > rec["nn_same_item_full"]


def test_project_2d_keeps_the_two_directions_of_most_variance():
    """PCA by hand: the projection's variances are the covariance's two largest eigenvalues, its
    axes are uncorrelated, and the picture does not depend on the run (signs fixed)."""
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((200, 40)) * np.linspace(3.0, 0.1, 40) + 5.0   # variance falls along the axes
    points = embedding.project_2d(vectors)
    assert points.shape == (200, 2)
    top = np.sort(np.linalg.eigvalsh(np.cov(vectors, rowvar=False)))[::-1][:2]
    assert np.allclose(points.var(axis=0, ddof=1), top)
    assert abs(np.corrcoef(points.T)[0, 1]) < 1e-8
    assert np.allclose(points.mean(axis=0), 0, atol=1e-9)
    again = embedding.project_2d(vectors[rng.permutation(200)])
    assert np.allclose(np.sort(again[:, 0]), np.sort(points[:, 0]))   # same directions, same signs
