"""search(): the query goes through the same masker, cut and embedder as the catalogue;
results come from the real on-disk index; the CLI prints a table or says what to run first."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import index as idx
from helpers import search as srch
from helpers.catalog import load_catalog
from conftest import build_reference_index, warm_cache
from helpers.settings import load_settings


@pytest.fixture(scope="module")
def built(small_catalog, tmp_path_factory):
    """The small catalogue cut out with its ground-truth masks (masker "reference"), embedded
    and indexed into a private cache and Chroma folder."""
    root = tmp_path_factory.mktemp("search")
    return build_reference_index(load_settings(toml_path=None, env={}, catalog=small_catalog,
                                               cache_dir=root / "cache", chroma_path=root / "chroma",
                                               masker="reference"))


def test_garment_mode_cuts_the_query_out_like_the_catalogue(built):
    table, settings = built["table"], built["settings"]
    query = table.iloc[9]
    res = srch.search(Path(query["image_path"]), mode="garment", k=5, settings=settings)
    assert list(res) == ["garment"]
    frame = res["garment"]
    assert list(frame.columns[:6]) == ["rank", "image_id", "item_id", "score", "distance", "image_path"]
    assert frame["rank"].tolist() == [1, 2, 3, 4, 5]
    # the query's own cut-out vector is in the index, so the query finds itself with score 1:
    # proof that the query was masked and cut exactly like the catalogue, not embedded whole
    assert frame["image_id"][0] == query["image_id"] and frame["score"][0] == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_array_equal(frame.attrs["query_mask"], built["masks"][query["image_id"]])
    cutout = frame.attrs["query_cutout"]
    assert cutout.size == built["cuts"].cutouts[query["image_id"]].size
    # and the whole-photo vector of the same query is a different vector
    full = built["runs"]["full"].as_dict()[query["image_id"]]
    garment = built["runs"]["garment"].as_dict()[query["image_id"]]
    assert float(full @ garment) < 0.95


def test_both_modes_exclude_and_filters(built):
    table, settings = built["table"], built["settings"]
    query = table.iloc[4]
    res = srch.search(query["image_path"], mode="both", k=4, settings=settings, exclude=[query["image_id"]])
    assert set(res) == {"garment", "full"}
    for frame in res.values():
        assert len(frame) == 4 and query["image_id"] not in set(frame["image_id"])
        assert frame["rank"].tolist() == [1, 2, 3, 4] and frame["score"].is_monotonic_decreasing
    assert "query_cutout" in res["garment"].attrs and "query_cutout" not in res["full"].attrs
    colour = table["colour"].iloc[20]
    filtered = srch.search(query["image_path"], mode="full", k=50, settings=settings, where={"colour": colour})
    assert set(filtered["full"]["colour"]) == {colour}
    assert len(filtered["full"]) == (table["colour"] == colour).sum()


def test_garment_mode_finds_the_same_item_better_than_full_mode(built):
    """The workbook's claim, on this small catalogue: over every query, the top-3 garment
    results hold more images of the query's item than the top-3 full-photo results."""
    table, settings = built["table"], built["settings"]
    hits = {"garment": 0, "full": 0}
    for _, row in table.iterrows():
        res = srch.search(row["image_path"], mode="both", k=3, settings=settings, exclude=[row["image_id"]])
        for mode, frame in res.items():
            hits[mode] += int((frame["item_id"] == row["item_id"]).sum())
    assert hits["garment"] > hits["full"], hits


def test_no_garment_in_the_query_is_a_clear_error(built):
    class EmptyMasker:  # a masker that finds nothing (what a photo without a dress gives)
        model_id, price_per_call, parallel = "test-empty", 0.0, "threads"

        def mask(self, image, prompt, *, image_id=None):
            return np.zeros((image.height, image.width), dtype=bool)

    photo = Image.open(built["table"]["image_path"][0]).convert("RGB")
    with pytest.raises(srch.SearchError, match="mode='full'") as err:
        srch.search(photo, mode="garment", settings=built["settings"], masker=EmptyMasker())
    assert err.value.reason == "no_garment"
    # full mode does not need a mask
    assert len(srch.search(photo, mode="full", k=2, settings=built["settings"])["full"]) == 2


def test_reference_masker_cannot_mask_an_upload(built, tmp_path):
    upload = tmp_path / "upload.png"
    Image.open(built["table"]["image_path"][0]).save(upload)  # same pixels, not a catalogue file
    with pytest.raises(srch.SearchError) as err:
        srch.search(upload, mode="garment", settings=built["settings"])
    assert err.value.reason == "no_reference" and "local or Bedrock masker" in str(err.value)


def test_unreadable_query_and_text_on_the_local_backend(built, tmp_path):
    bad = tmp_path / "not-a-photo.jpg"
    bad.write_text("hello")
    with pytest.raises(srch.SearchError) as err:
        srch.search(bad, mode="full", settings=built["settings"])
    assert err.value.reason == "not_an_image"
    with pytest.raises(srch.SearchError, match="backend='bedrock'") as err:
        srch.search("red dress with white dots", mode="full", settings=built["settings"])
    assert err.value.reason == "text_unsupported"


def test_empty_index_says_to_run_the_pipeline(built, tmp_path, capsys, monkeypatch):
    settings = built["settings"].replace(chroma_path=tmp_path / "empty-chroma")
    with pytest.raises(srch.SearchError, match="python -m helpers run") as err:
        srch.search(built["table"]["image_path"][0], mode="full", settings=settings)
    assert err.value.reason == "empty_index"
    client = idx.get_client(settings)
    assert client.list_collections() == []   # asking an unbuilt index creates nothing
    index = idx.CatalogIndex.open(settings)
    assert index.counts() == {"full": 0, "garment": 0}
    with pytest.raises(idx.EmptyIndexError, match="build the index first"):
        index.query("garment", np.ones(index.dim, np.float32))
    ids, vectors = index.get_vectors("full")
    assert ids == [] and vectors.shape == (0, index.dim)
    assert client.list_collections() == []
    monkeypatch.setenv("WORKBOOK_CATALOG", str(settings.catalog))
    monkeypatch.setenv("WORKBOOK_CACHE_DIR", str(settings.cache_dir))
    monkeypatch.setenv("WORKBOOK_CHROMA_PATH", str(tmp_path / "empty-chroma"))
    assert srch.main([built["table"]["image_path"][0], "--mode", "full"]) == 2
    assert "python -m helpers run" in capsys.readouterr().err


def test_cli_prints_a_ranked_table(built, capsys, monkeypatch):
    settings = built["settings"]
    for key in ("catalog", "cache_dir", "chroma_path"):
        monkeypatch.setenv(f"WORKBOOK_{key.upper()}", str(getattr(settings, key)))
    monkeypatch.setenv("WORKBOOK_MASKER", "reference")
    row = built["table"].iloc[12]
    code = srch.main([row["image_path"], "--mode", "both", "--k", "3", "--where", f"item_id={row['item_id']}"])
    out = capsys.readouterr().out
    assert code == 0
    assert "== garment (dress) ==" in out and "== full ==" in out
    lines = [line.split() for line in out.splitlines() if line.strip().startswith(("1 ", "2 ", "3 "))]
    assert len(lines) == 6 and all(parts[2] == row["item_id"] for parts in lines)
    assert lines[0][1] == row["image_id"]


def test_parse_where():
    assert srch.parse_where(["category=dress"]) == {"category": "dress"}
    assert srch.parse_where(["colour=red", "bbox_x0=12", "x=true"]) == {
        "$and": [{"colour": "red"}, {"bbox_x0": 12}, {"x": True}]}
    assert srch.parse_where(None) is None
    with pytest.raises(srch.SearchError, match="key=value"):
        srch.parse_where(["dress"])


def test_text_search_on_bedrock_sends_titans_exact_request(tmp_path, small_catalog, monkeypatch):
    """Free text is embedded by Titan Multimodal (Bedrock backend) and searched among image
    vectors. Bedrock is driven through botocore's Stubber with the exact request body."""
    import io
    import json

    from botocore.response import StreamingBody
    from botocore.stub import Stubber

    from helpers import bedrock

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")  # Stubber answers before any network use
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings = load_settings(toml_path=None, env={}, backend="bedrock", embed_dim=256, aws_region="us-east-1",
                             max_retries=1, concurrency=1, catalog=small_catalog,
                             cache_dir=tmp_path / "cache", chroma_path=tmp_path / "chroma")
    client = bedrock.make_client(settings, "bedrock-runtime")
    embedder = bedrock.BedrockEmbedder(settings, client=client)
    table = load_catalog(small_catalog).table.head(6)
    vectors = idx.random_unit_vectors(6, 256, seed=2)  # stand-ins for Titan's image vectors
    index = idx.CatalogIndex.open(settings, embedder)  # the collections search() reads for this catalogue
    for view in idx.VIEWS:
        index.upsert(view, list(table["image_id"]), vectors, table.to_dict("records"))
    answer = json.dumps({"embedding": (vectors[3] * 7).tolist(), "inputTextTokenCount": 5, "message": None}).encode()
    text = "red dress with white dots"
    with Stubber(client) as stub:
        stub.add_response("invoke_model", {"body": StreamingBody(io.BytesIO(answer), len(answer)),
                                           "contentType": "application/json"},
                          {"modelId": "amazon.titan-embed-image-v1", "contentType": "application/json",
                           "accept": "application/json",
                           "body": json.dumps({"inputText": text, "embeddingConfig": {"outputEmbeddingLength": 256}})})
        res = srch.search(text, mode="garment", k=3, settings=settings, embedder=embedder, index=index)
        stub.assert_no_pending_responses()
    frame = res["garment"]
    assert frame["image_id"][0] == table["image_id"][3] and frame["score"][0] == pytest.approx(1.0, abs=1e-5)
    assert "query_cutout" not in frame.attrs  # nothing to cut out of a text query


def test_an_upload_is_masked_by_the_local_masker_like_the_catalogue(small_catalog, seed_cache, tmp_path):
    """The offline default: the pipeline masks the catalogue with the local masker, and an
    uploaded photo (a PIL image, not a catalogue file) goes through the same masker and cut."""
    from helpers import pipeline

    settings = load_settings(toml_path=None, env={}, catalog=small_catalog,
                             cache_dir=warm_cache(seed_cache, tmp_path / "cache"),
                             chroma_path=tmp_path / "chroma", masker="local")
    result = pipeline.run_pipeline(settings, progress=False, reference=False)
    row = result.table.iloc[9]
    upload = Image.open(row["image_path"]).convert("RGB")
    found = srch.search(upload, mode="both", k=3, settings=settings)
    np.testing.assert_array_equal(found["garment"].attrs["query_mask"], result.masks.masks[row["image_id"]])
    assert found["garment"]["image_id"][0] == row["image_id"] and found["garment"]["score"][0] > 0.99
    assert found["full"]["image_id"][0] == row["image_id"]
    # #16: the query is cut with the catalogue's recipe, so every catalogue photo searched as an
    # upload finds itself with (almost exactly) score 1 - before the fix it scored ~0.999
    scores = {}
    for image_id, path in zip(result.table["image_id"], result.table["image_path"]):
        if image_id not in result.cuts.cutouts:
            continue  # no garment in the catalogue either: nothing to find
        frame = srch.search(Image.open(path).convert("RGB"), mode="garment", k=1, settings=settings)["garment"]
        scores[image_id] = (frame["image_id"][0], float(frame["score"][0]))
    assert len(scores) >= len(result.table) - 2
    assert all(top == own and score >= 0.9999 for own, (top, score) in scores.items()), scores
