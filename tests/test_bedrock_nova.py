"""Nova Multimodal Embeddings beside Titan MM G1: the exact InvokeModel body for each dimension
and purpose (Stubber), the response shape, and that the two models never share a collection."""
from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from PIL import Image

from helpers import bedrock
from helpers.embedding import EmbedError
from helpers.index import collection_name
from helpers.settings import load_settings
from conftest import fake_aws_env

NOVA = "amazon.nova-2-multimodal-embeddings-v1:0"
TITAN = "amazon.titan-embed-image-v1"
JSON = "application/json"


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch, tmp_path):
    fake_aws_env(monkeypatch, tmp_path)
    _TMP[0] = tmp_path


_TMP = [None]


def embedder(dim: int, purpose: str = "GENERIC_INDEX", model: str = NOVA):
    settings = load_settings(toml_path=None, env={}, backend="bedrock", embed_model_id=model,
                             embed_dim=dim, max_retries=1, concurrency=1, cache_dir=_TMP[0] / "c")
    client = bedrock.make_client(settings, "bedrock-runtime")
    stub = Stubber(client)
    stub.activate()
    return bedrock.BedrockEmbedder(settings, client=client, purpose=purpose), stub


def photo() -> Image.Image:
    arr = np.full((96, 64, 3), 200, np.uint8)
    arr[20:80, 16:48] = (30, 60, 170)
    return Image.fromarray(arr)


def b64png(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def response(dim: int, kind: str = "IMAGE", seed: int = 0) -> dict:
    vec = np.random.default_rng(seed).normal(size=dim).tolist()
    data = json.dumps({"embeddings": [{"embeddingType": kind, "embedding": vec}]}).encode()
    return {"body": StreamingBody(io.BytesIO(data), len(data)), "contentType": JSON}


def params(body: dict) -> dict:
    return {"modelId": NOVA, "body": json.dumps(body), "contentType": JSON, "accept": JSON}


@pytest.mark.parametrize("purpose", ["GENERIC_INDEX", "GENERIC_RETRIEVAL"])
@pytest.mark.parametrize("dim", [256, 384, 1024, 3072])
def test_image_body_exact_for_each_dimension_and_purpose(dim, purpose):
    emb, stub = embedder(dim, purpose)
    image = photo()
    stub.add_response("invoke_model", response(dim), params({
        "schemaVersion": "nova-multimodal-embed-v1",
        "taskType": "SINGLE_EMBEDDING",
        "singleEmbeddingParams": {"embeddingPurpose": purpose, "embeddingDimension": dim,
                                  "image": {"format": "png", "source": {"bytes": b64png(image)}}}}))
    vec = emb.embed_one(image)
    stub.assert_no_pending_responses()
    assert vec.shape == (dim,) and vec.dtype == np.float32
    assert np.isclose(np.linalg.norm(vec), 1.0, atol=1e-6)


@pytest.mark.parametrize("dim", [256, 384, 1024, 3072])
def test_text_query_body_exact(dim):
    emb, stub = embedder(dim)
    stub.add_response("invoke_model", response(dim, "TEXT"), params({
        "schemaVersion": "nova-multimodal-embed-v1",
        "taskType": "SINGLE_EMBEDDING",
        "singleEmbeddingParams": {"embeddingPurpose": "GENERIC_RETRIEVAL", "embeddingDimension": dim,
                                  "text": {"truncationMode": "END", "value": "red dress with white dots"}}}))
    out = emb.embed_text("red dress with white dots")
    assert out.shape == (1, dim)


def test_jpeg_photo_keeps_jpeg_format_when_png_is_too_big():
    body = bedrock.nova_embed_request(image_b64="QUJD", image_format="jpeg", dim=256)
    assert body["singleEmbeddingParams"]["image"] == {"format": "jpeg", "source": {"bytes": "QUJD"}}


@pytest.mark.parametrize("kwargs, message", [
    (dict(image_b64="QUJD", text="dress"), "exactly one of image_b64 or text"),
    (dict(), "exactly one of image_b64 or text"),
    (dict(text="dress", dim=512), "offers (256, 384, 1024, 3072), not 512"),
    (dict(text="dress", purpose="INDEX"), "embeddingPurpose must be one of"),
    (dict(image_b64="QUJD", image_format="bmp"), "not 'bmp'"),
    (dict(text="  "), "must not be empty"),
])
def test_bad_requests_are_refused_before_any_call(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        bedrock.nova_embed_request(**kwargs)


@pytest.mark.parametrize("payload, needle", [
    ({"embeddings": []}, "embeddings[0].embedding"),
    ({"embedding": [0.1] * 256}, "keys present: embedding"),
    ({"embeddings": [{"embeddingType": "IMAGE", "embedding": [0.1] * 100}]}, "returned 100 numbers"),
])
def test_bad_nova_responses(payload, needle):
    emb, stub = embedder(256)
    data = json.dumps(payload).encode()
    stub.add_response("invoke_model", {"body": StreamingBody(io.BytesIO(data), len(data)),
                                       "contentType": JSON})
    with pytest.raises(EmbedError) as info:
        emb.embed_one(photo(), image_id="p1")
    assert info.value.reason == "bad_response" and needle in str(info.value)


def test_titan_and_nova_vectors_never_share_a_collection():
    for view in ("full", "garment"):
        assert collection_name(TITAN, 1024, view) != collection_name(NOVA, 1024, view)
        assert collection_name(NOVA, 1024, view) != collection_name(NOVA, 3072, view)


def test_nova_and_titan_vectors_have_different_cache_keys():
    from helpers.embedding import vector_key

    nova, _ = embedder(1024)
    titan, _ = embedder(1024, model=TITAN)
    data = b"\x89PNG same bytes"
    assert vector_key(data, nova, "full") != vector_key(data, titan, "full")
