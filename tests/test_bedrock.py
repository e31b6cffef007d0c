"""Bedrock masking, embedding, errors and the access check, through botocore's Stubber.

No machine here reaches AWS. Each test drives a real botocore client (built by
`helpers.bedrock.make_client`) whose HTTP layer is replaced by `Stubber`, with the exact
request (modelId, JSON body string, contentType, accept) checked and realistic responses
(StreamingBody) and service errors (code, message, HTTP status).
"""
from __future__ import annotations

import base64
import io
import json
import logging
import pickle
from datetime import datetime, timezone

import numpy as np
import pytest
from botocore.awsrequest import AWSResponse
from botocore.response import StreamingBody
from botocore.stub import Stubber
from PIL import Image

from helpers import bedrock
from helpers.maskers import titan
from helpers.embedding import EmbedError, Embedder
from helpers.maskers import Masker
from helpers.errors import MaskError
from helpers.settings import SettingsError, load_settings
from conftest import fake_aws_env

TITAN_V2 = "amazon.titan-image-generator-v2:0"
TITAN_V1 = "amazon.titan-image-generator-v1"
NOVA_CANVAS = "amazon.nova-canvas-v1:0"
TITAN_EMBED = "amazon.titan-embed-image-v1"
NOVA_EMBED = "amazon.nova-2-multimodal-embeddings-v1:0"
JSON = "application/json"


# --- environment and fixtures -------------------------------------------------------------

@pytest.fixture(autouse=True)
def fake_aws(monkeypatch, tmp_path):
    """Fake credentials from the environment only; no config files, no instance metadata."""
    fake_aws_env(monkeypatch, tmp_path)
    _CACHE_DIR[0] = tmp_path / "cache"  # the usage ledger of stubbed calls stays in tmp


_CACHE_DIR = [None]


def make_settings(**overrides):
    values = dict(backend="bedrock", masker="titan", aws_region="us-east-1", max_retries=1, concurrency=1,
                  cache_dir=_CACHE_DIR[0])
    values.update(overrides)
    return load_settings(toml_path=None, env={}, **values)


@pytest.fixture()
def stubbed():
    """Factory: (settings, client, stubber) for the runtime or control-plane service; at the
    end of the test every queued response must have been used."""
    stubbers = []

    def make(service: str = "bedrock-runtime", **overrides):
        settings = make_settings(**overrides)
        client = bedrock.make_client(settings, service)
        stub = Stubber(client)
        stub.activate()
        stubbers.append(stub)
        return settings, client, stub

    yield make
    for stub in stubbers:
        stub.assert_no_pending_responses()
        stub.deactivate()


# --- realistic images and responses -------------------------------------------------------

def photo(w: int = 64, h: int = 96) -> Image.Image:
    """A small 'photo': grey studio, a red dress-shaped block, a skin-coloured head."""
    arr = np.full((h, w, 3), 205, np.uint8)
    arr[h // 4: h * 5 // 6, w // 4: w * 3 // 4] = (180, 30, 40)
    arr[h // 12: h // 4, w * 3 // 8: w * 5 // 8] = (224, 180, 150)
    return Image.fromarray(arr)


def png_b64(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def titan_mask_b64(w: int, h: int, box: tuple[int, int, int, int] | None) -> str:
    """A mask the way Titan returns it: RGB PNG, black (0,0,0) = inside the mask."""
    im = Image.new("RGB", (w, h), (255, 255, 255))
    if box:
        im.paste((0, 0, 0), box)
    return png_b64(im)


def body_of(payload: dict) -> dict:
    data = json.dumps(payload).encode()
    return {"body": StreamingBody(io.BytesIO(data), len(data)), "contentType": JSON}


def invoke_params(model_id: str, body: dict | object) -> dict:
    return {"modelId": model_id, "body": json.dumps(body) if isinstance(body, dict) else body,
            "contentType": JSON, "accept": JSON}


class BodyCheck:
    """Stubber compares expected != actual; this decodes the JSON body and runs a check,
    for requests whose image is resized (so its exact bytes are the code's own output)."""

    def __init__(self, check):
        self.check, self.seen = check, None

    def __eq__(self, actual):
        self.seen = json.loads(actual)
        self.check(self.seen)
        return True

    def __ne__(self, actual):
        return not self.__eq__(actual)


def sent_image(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


# --- masking: request body and success ----------------------------------------------------

def test_mask_request_body_is_titan_inpainting_with_returnmask():
    assert bedrock.mask_request("QUJD", "dress") == {
        "taskType": "INPAINTING",
        "inPaintingParams": {"image": "QUJD", "maskPrompt": "dress", "text": "dress",
                             "returnMask": True},
        "imageGenerationConfig": {"numberOfImages": 1, "quality": "standard", "cfgScale": 8.0},
    }
    with_negative = bedrock.mask_request("QUJD", "dress", text="a plain dress", negative_text="logo")
    assert list(with_negative["inPaintingParams"]) == ["image", "maskPrompt", "text",
                                                       "negativeText", "returnMask"]
    with pytest.raises(ValueError, match="512"):
        bedrock.mask_request("QUJD", "x" * 513)


def test_preview_body_shortens_the_base64_image_for_notebooks():
    masker = titan.BedrockMasker(make_settings())
    shown = json.loads(bedrock.preview_body(masker.request_body(photo(), "dress")))
    assert shown["inPaintingParams"]["image"].startswith("<base64, ")
    assert shown["inPaintingParams"]["maskPrompt"] == "dress"
    assert shown["imageGenerationConfig"]["cfgScale"] == 8.0


@pytest.mark.parametrize("model_id", [TITAN_V2, NOVA_CANVAS])
def test_mask_sends_exact_body_and_returns_bool_garment_mask(stubbed, model_id):
    settings, client, stub = stubbed(mask_model_id=model_id)
    image = photo()
    expected_body = {
        "taskType": "INPAINTING",
        "inPaintingParams": {"image": png_b64(image), "maskPrompt": "dress", "text": "dress",
                             "returnMask": True},
        "imageGenerationConfig": {"numberOfImages": 1, "quality": "standard", "cfgScale": 8.0},
    }
    box = (16, 24, 48, 80)
    stub.add_response("invoke_model",
                      body_of({"images": [png_b64(image)], "maskImage": titan_mask_b64(64, 96, box),
                               "error": None}),
                      invoke_params(model_id, expected_body))
    masker = titan.BedrockMasker(settings, client=client)
    assert isinstance(masker, Masker)
    assert (masker.model_id, masker.price_per_call, masker.parallel) == (model_id, 0.01, "threads")

    mask = masker.mask(image, "dress", image_id="look-1")

    assert mask.dtype == bool and mask.shape == (96, 64)
    expected = np.zeros((96, 64), bool)
    expected[24:80, 16:48] = True  # black in Titan's mask = the garment
    assert np.array_equal(mask, expected)


def test_mask_resizes_to_1408_and_maps_mask_back_to_original_size(stubbed):
    settings, client, stub = stubbed()
    gradient = np.linspace(0, 255, 3000, dtype=np.uint8)
    image = Image.fromarray(np.stack([np.tile(gradient, (2000, 1))] * 3, axis=-1))  # 3000x2000

    def check(body):
        sent = sent_image(body["inPaintingParams"]["image"])
        assert sent.size == (1408, 939) and sent.format == "PNG"
        assert body["inPaintingParams"]["maskPrompt"] == "dress"
        assert body["inPaintingParams"]["returnMask"] is True
        assert body["imageGenerationConfig"] == {"numberOfImages": 1, "quality": "standard",
                                                 "cfgScale": 8.0}

    matcher = BodyCheck(check)
    # the model answers at the size it was sent: left half of 1408 x 939 is the garment
    stub.add_response("invoke_model",
                      body_of({"images": [], "maskImage": titan_mask_b64(1408, 939, (0, 0, 704, 939)),
                               "error": None}),
                      invoke_params(TITAN_V2, matcher))
    mask = titan.BedrockMasker(settings, client=client).mask(image, "dress")
    assert matcher.seen is not None
    assert mask.shape == (2000, 3000)
    assert mask[:, :1499].all() and not mask[:, 1501:].any()


def test_big_noisy_image_is_fitted_under_5_mb(stubbed):
    settings, client, stub = stubbed()
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (1000, 1500, 3), dtype=np.uint8))  # PNG ~4.5 MB

    def check(body):
        b64 = body["inPaintingParams"]["image"]
        assert len(b64) <= 5_000_000
        assert max(sent_image(b64).size) <= 1408

    stub.add_response("invoke_model",
                      body_of({"maskImage": titan_mask_b64(1408, 939, (100, 100, 400, 800)),
                               "images": [], "error": None}),
                      invoke_params(TITAN_V2, BodyCheck(check)))
    mask = titan.BedrockMasker(settings, client=client).mask(image, "dress")
    assert mask.shape == (1000, 1500) and mask.any()


def test_transparent_input_is_composited_on_white(stubbed):
    settings, client, stub = stubbed()
    rgba = Image.new("RGBA", (64, 96), (0, 0, 0, 0))
    rgba.paste((180, 30, 40, 255), (16, 24, 48, 80))
    expected_rgb = Image.new("RGB", (64, 96), (255, 255, 255))
    expected_rgb.paste((180, 30, 40), (16, 24, 48, 80))
    stub.add_response("invoke_model",
                      body_of({"maskImage": titan_mask_b64(64, 96, (16, 24, 48, 80)), "images": [],
                               "error": None}),
                      invoke_params(TITAN_V2, bedrock.mask_request(png_b64(expected_rgb), "dress")))
    assert titan.BedrockMasker(settings, client=client).mask(rgba, "dress").sum() == 32 * 56


def test_unsupported_mask_model_id_is_a_settings_error():
    with pytest.raises(SettingsError, match="amazon.titan-image-generator-v2:0"):
        titan.BedrockMasker(make_settings(mask_model_id="stability.sd3-large-v1:0"))


# --- masking: every failure, as MaskError(reason) with a what-to-do message ---------------

def expect_mask_error(stub, settings, client, reason, *, model_id=TITAN_V2, image=None) -> MaskError:
    image = image or photo()
    with pytest.raises(MaskError) as info:
        titan.BedrockMasker(settings, client=client).mask(image, "dress", image_id="look-7")
    assert info.value.reason == reason, str(info.value)
    return info.value


def queue_error(stub, model_id, code, message, status, image=None):
    stub.add_client_error("invoke_model", service_error_code=code, service_message=message,
                          http_status_code=status,
                          expected_params=invoke_params(model_id, bedrock.mask_request(
                              png_b64(image or photo()), "dress")))


def test_content_filter(stubbed):
    settings, client, stub = stubbed()
    queue_error(stub, TITAN_V2, "ValidationException",
                "This request has been blocked by our content filters. Please adjust your input "
                "and try again.", 400)
    err = expect_mask_error(stub, settings, client, "content_filter")
    assert "blocked by our content filters" in str(err) and "look-7" in str(err)
    assert "masker='local'" in str(err)


def test_content_filter_naming_the_policy(stubbed):
    settings, client, stub = stubbed()
    queue_error(stub, TITAN_V2, "ValidationException",
                "The request was blocked because it may violate the AWS Responsible AI Policy "
                "or Acceptable Use Policy.", 400)
    expect_mask_error(stub, settings, client, "content_filter")


def test_throttled_after_retries(stubbed):
    settings, client, stub = stubbed(concurrency=4, max_retries=3)
    queue_error(stub, TITAN_V2, "ThrottlingException",
                "Too many requests, please wait before trying again.", 429)
    err = expect_mask_error(stub, settings, client, "throttled")
    text = str(err)
    assert "even after 3 retries" in text and "concurrency" in text and "(now 4)" in text
    assert "quota increase" in text


def test_throttling_really_retries_in_botocore_then_reports_throttled(monkeypatch):
    """Stubber skips botocore's retry loop, so this one answers at the HTTP layer instead
    (`before-send`): botocore parses a real 429 response, retries max_retries times, and the
    masker reports reason "throttled"."""
    settings = make_settings(max_retries=1)
    client = bedrock.make_client(settings)
    sends = []

    class Raw:
        def stream(self, **_):
            yield b'{"message":"Too many requests, please wait before trying again."}'

    def answer_429(request, **_):
        sends.append(json.loads(request.body))
        return AWSResponse(request.url, 429,
                           {"x-amzn-ErrorType": "ThrottlingException:http://internal.amazon.com/",
                            "Content-Type": JSON}, Raw())

    client.meta.events.register("before-send.bedrock-runtime.InvokeModel", answer_429)
    err = expect_mask_error(None, settings, client, "throttled")
    assert len(sends) == 2  # first try + max_retries
    assert sends[0] == bedrock.mask_request(png_b64(photo()), "dress")
    assert "even after 1 retries" in str(err)


def test_access_denied(stubbed):
    settings, client, stub = stubbed(aws_region="us-west-2")
    queue_error(stub, TITAN_V2, "AccessDeniedException",
                "You don't have access to the model with the specified model ID.", 403)
    text = str(expect_mask_error(stub, settings, client, "access_denied"))
    assert "Bedrock console" in text and f"{TITAN_V2} in us-west-2" in text
    assert "masker='local'" in text


def test_retired_model_end_of_life(stubbed):
    settings, client, stub = stubbed(mask_model_id=TITAN_V1)
    queue_error(stub, TITAN_V1, "ValidationException",
                "This model version has reached the end of its life. Please refer to the AWS "
                "documentation for more details.", 400)
    text = str(expect_mask_error(stub, settings, client, "model_unavailable", model_id=TITAN_V1))
    assert "end of its life" in text and "mask_model_id" in text and TITAN_V2 in text
    assert "masker='local'" in text


def test_legacy_model_closed_to_inactive_account(stubbed):
    settings, client, stub = stubbed()
    queue_error(stub, TITAN_V2, "ResourceNotFoundException",
                "Access denied. This Model is marked by provider as Legacy and you have not been "
                "actively using the model in the last 30 days. Please upgrade to an active model "
                "on Amazon Bedrock", 404)
    text = str(expect_mask_error(stub, settings, client, "model_unavailable"))
    assert "Legacy" in text and "mask_model_id" in text


def test_unknown_model_identifier_in_a_serving_region(stubbed):
    settings, client, stub = stubbed()
    queue_error(stub, TITAN_V2, "ValidationException", "The provided model identifier is invalid.", 400)
    text = str(expect_mask_error(stub, settings, client, "model_unavailable"))
    assert "mask_model_id" in text and "masker='local'" in text


def test_region_without_the_model(stubbed):
    settings, client, stub = stubbed(aws_region="eu-central-1")
    assert client.meta.region_name == "eu-central-1"
    queue_error(stub, TITAN_V2, "ValidationException", "The provided model identifier is invalid.", 400)
    text = str(expect_mask_error(stub, settings, client, "region"))
    assert "eu-central-1" in text and "us-east-1" in text and "us-west-2" in text
    assert "aws_region" in text


def test_model_timeout_is_a_service_error(stubbed):
    settings, client, stub = stubbed()
    queue_error(stub, TITAN_V2, "ModelTimeoutException",
                "Model has timed out in processing the request.", 408)
    assert "re-run later" in str(expect_mask_error(stub, settings, client, "service_error"))


def test_response_without_mask_image_names_the_keys(stubbed):
    settings, client, stub = stubbed()
    stub.add_response("invoke_model", body_of({"images": [png_b64(photo())], "error": None}),
                      invoke_params(TITAN_V2, bedrock.mask_request(png_b64(photo()), "dress")))
    text = str(expect_mask_error(stub, settings, client, "bad_response"))
    assert "maskImage" in text and "keys present: error, images" in text


def test_response_error_field_is_content_moderation(stubbed):
    settings, client, stub = stubbed()
    stub.add_response("invoke_model",
                      body_of({"images": [], "maskImage": None,
                               "error": "The generated image was blocked by content moderation."}),
                      invoke_params(TITAN_V2, bedrock.mask_request(png_b64(photo()), "dress")))
    text = str(expect_mask_error(stub, settings, client, "content_filter"))
    assert "content moderation" in text


def test_non_json_response_is_bad_response(stubbed):
    settings, client, stub = stubbed()
    stub.add_response("invoke_model", {"body": StreamingBody(io.BytesIO(b"<html>"), 6),
                                       "contentType": "text/html"},
                      invoke_params(TITAN_V2, bedrock.mask_request(png_b64(photo()), "dress")))
    assert "not JSON" in str(expect_mask_error(stub, settings, client, "bad_response"))


def test_empty_mask_is_no_garment(stubbed):
    settings, client, stub = stubbed()
    stub.add_response("invoke_model",
                      body_of({"images": [png_b64(photo())], "maskImage": titan_mask_b64(64, 96, None),
                               "error": None}),
                      invoke_params(TITAN_V2, bedrock.mask_request(png_b64(photo()), "dress")))
    text = str(expect_mask_error(stub, settings, client, "no_garment"))
    assert "matched nothing" in text and "'dress'" in text


def test_missing_credentials_say_aws_configure(monkeypatch):
    """Stubber answers before signing, so this uses the real client without credentials:
    botocore raises NoCredentialsError while signing, before anything is sent."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    err = expect_mask_error(None, make_settings(), None, "no_credentials")
    assert "aws configure" in str(err) and "AWS_PROFILE" in str(err)


def test_unknown_profile_is_no_credentials():
    err = expect_mask_error(None, make_settings(aws_profile="does-not-exist"), None, "no_credentials")
    assert "aws configure --profile" in str(err)


def test_a_batch_goes_on_past_failures_and_tables_them(stubbed):
    """The way the masking step uses this module: cost line, budget, then run_parallel."""
    from helpers import cost

    settings, client, stub = stubbed()
    images = {"ok": photo(), "filtered": photo(64, 64), "throttled": photo(48, 96)}
    stub.add_response("invoke_model", body_of({"images": [], "error": None,
                                               "maskImage": titan_mask_b64(64, 96, (0, 0, 10, 10))}),
                      invoke_params(TITAN_V2, bedrock.mask_request(png_b64(images["ok"]), "dress")))
    queue_error(stub, TITAN_V2, "ValidationException", "This request has been blocked by our "
                "content filters.", 400, image=images["filtered"])
    queue_error(stub, TITAN_V2, "ThrottlingException", "Too many requests, please wait before "
                "trying again.", 429, image=images["throttled"])
    masker = titan.BedrockMasker(settings, client=client)

    est = cost.check_budget(cost.estimate(len(images), 0, masker.price_per_call, masker.label),
                            settings.max_spend_usd)
    assert str(est) == "Titan Image Generator v2 mask: 3 images, 0 cached, 3 calls, about $0.03"
    results, failures = cost.run_parallel(lambda im: masker.mask(im, "dress"), images,
                                          settings.concurrency, "Titan masks", progress=False)

    assert list(results) == ["ok"] and results["ok"].sum() == 100
    assert failures[["image_id", "reason"]].values.tolist() == [["filtered", "content_filter"],
                                                          ["throttled", "throttled"]]


# --- embedding -----------------------------------------------------------------------------

def fake_vector(dim: int, seed: int = 0) -> list[float]:
    return np.random.default_rng(seed).normal(size=dim).round(6).tolist()


@pytest.mark.parametrize("dim", [256, 384, 1024])
def test_titan_embedding_exact_body_for_each_dimension(stubbed, dim):
    settings, client, stub = stubbed(embed_dim=dim)
    image = photo()
    vec = fake_vector(dim)
    stub.add_response("invoke_model",
                      body_of({"embedding": vec, "inputTextTokenCount": 0, "message": None}),
                      invoke_params(TITAN_EMBED, {"inputImage": png_b64(image),
                                                  "embeddingConfig": {"outputEmbeddingLength": dim}}))
    embedder = bedrock.BedrockEmbedder(settings, client=client)
    assert isinstance(embedder, Embedder)
    assert (embedder.model_id, embedder.dim, embedder.price_per_call) == (TITAN_EMBED, dim, 0.00006)

    out = embedder.embed([image])

    assert out.dtype == np.float32 and out.shape == (1, dim)
    assert np.isclose(np.linalg.norm(out[0]), 1.0, atol=1e-6)
    assert np.allclose(out[0], np.array(vec) / np.linalg.norm(vec), atol=1e-6)


def test_embed_several_images_keeps_order(stubbed):
    settings, client, stub = stubbed(embed_dim=256)
    images = [photo(), photo(96, 64), photo(32, 32)]
    for i, im in enumerate(images):
        stub.add_response("invoke_model", body_of({"embedding": fake_vector(256, i),
                                                   "inputTextTokenCount": 0, "message": None}),
                          invoke_params(TITAN_EMBED, {"inputImage": png_b64(im),
                                                      "embeddingConfig": {"outputEmbeddingLength": 256}}))
    out = bedrock.BedrockEmbedder(settings, client=client).embed(images)
    for i in range(3):
        v = np.array(fake_vector(256, i))
        assert np.allclose(out[i], v / np.linalg.norm(v), atol=1e-6)


def test_a_failed_batch_retried_one_by_one_does_not_pay_twice(stubbed):
    """The embedding step re-embeds a failed batch image by image; the image that already
    succeeded must not be sent again (the Stubber would refuse an unqueued call)."""
    settings, client, stub = stubbed(embed_dim=256)
    good, bad = photo(), photo(96, 64)
    good_params, bad_params = (
        invoke_params(TITAN_EMBED, {"inputImage": png_b64(im),
                                    "embeddingConfig": {"outputEmbeddingLength": 256}})
        for im in (good, bad))
    stub.add_response("invoke_model", body_of({"embedding": fake_vector(256), "message": None,
                                               "inputTextTokenCount": 0}), good_params)
    stub.add_client_error("invoke_model", service_error_code="ValidationException",
                          service_message="This request has been blocked by our content filters.",
                          http_status_code=400, expected_params=bad_params)
    embedder = bedrock.BedrockEmbedder(settings, client=client)
    assert embedder.batch_size == 4
    with pytest.raises(EmbedError):
        embedder.embed([good, bad])
    again = embedder.embed([good])  # no call: remembered
    v = np.array(fake_vector(256))
    assert np.allclose(again[0], v / np.linalg.norm(v), atol=1e-6)


def test_embed_text_query(stubbed):
    settings, client, stub = stubbed(embed_dim=384)
    stub.add_response("invoke_model", body_of({"embedding": fake_vector(384), "inputTextTokenCount": 7,
                                               "message": None}),
                      invoke_params(TITAN_EMBED, {"inputText": "red dress with white dots",
                                                  "embeddingConfig": {"outputEmbeddingLength": 384}}))
    out = bedrock.BedrockEmbedder(settings, client=client).embed_text(["red dress with white dots"])
    assert out.shape == (1, 384) and out.dtype == np.float32


def test_embedding_downscales_to_2048(stubbed):
    settings, client, stub = stubbed(embed_dim=256)
    image = Image.new("RGB", (3000, 1500), (120, 40, 40))

    def check(body):
        assert sent_image(body["inputImage"]).size == (2048, 1024)
        assert body["embeddingConfig"] == {"outputEmbeddingLength": 256}

    stub.add_response("invoke_model", body_of({"embedding": fake_vector(256), "message": None,
                                               "inputTextTokenCount": 0}),
                      invoke_params(TITAN_EMBED, BodyCheck(check)))
    assert bedrock.BedrockEmbedder(settings, client=client).embed([image]).shape == (1, 256)


def test_nova_embedding_body(stubbed):
    settings, client, stub = stubbed(embed_model_id=NOVA_EMBED, embed_dim=3072)
    image = photo()
    stub.add_response("invoke_model",
                      body_of({"embeddings": [{"embeddingType": "IMAGE", "embedding": fake_vector(3072)}]}),
                      invoke_params(NOVA_EMBED, {
                          "schemaVersion": "nova-multimodal-embed-v1",
                          "taskType": "SINGLE_EMBEDDING",
                          "singleEmbeddingParams": {"embeddingPurpose": "GENERIC_INDEX",
                                                    "embeddingDimension": 3072,
                                                    "image": {"format": "png",
                                                              "source": {"bytes": png_b64(image)}}}}))
    out = bedrock.BedrockEmbedder(settings, client=client).embed([image])
    assert out.shape == (1, 3072) and np.isclose(np.linalg.norm(out[0]), 1.0, atol=1e-6)


def test_titan_rejects_3072_dimensions():
    with pytest.raises(SettingsError, match="256, 384, 1024"):
        bedrock.BedrockEmbedder(make_settings(embed_dim=3072))


ERROR_CASES = [
    ("ValidationException", "This request has been blocked by our content filters.", 400, "content_filter"),
    ("ThrottlingException", "Too many requests, please wait before trying again.", 429, "throttled"),
    ("AccessDeniedException", "You don't have access to the model with the specified model ID.", 403,
     "access_denied"),
    ("ValidationException", "This model version has reached the end of its life.", 400, "model_unavailable"),
    ("ResourceNotFoundException", "Could not resolve the foundation model from the provided model "
                                  "identifier.", 404, "model_unavailable"),
]


@pytest.mark.parametrize("code,message,status,reason", ERROR_CASES)
def test_embedding_errors(stubbed, code, message, status, reason):
    settings, client, stub = stubbed(embed_dim=256)
    stub.add_client_error("invoke_model", service_error_code=code, service_message=message,
                          http_status_code=status,
                          expected_params=invoke_params(TITAN_EMBED, {
                              "inputImage": png_b64(photo()),
                              "embeddingConfig": {"outputEmbeddingLength": 256}}))
    with pytest.raises(EmbedError) as info:
        bedrock.BedrockEmbedder(settings, client=client).embed([photo()])
    assert info.value.reason == reason
    if reason in ("access_denied", "model_unavailable", "content_filter"):
        assert "backend='local'" in str(info.value)


def test_embedding_region_without_the_model(stubbed):
    settings, client, stub = stubbed(embed_model_id=NOVA_EMBED, embed_dim=1024, aws_region="us-west-2")
    stub.add_client_error("invoke_model", service_error_code="ValidationException",
                          service_message="The provided model identifier is invalid.",
                          http_status_code=400,
                          expected_params=invoke_params(NOVA_EMBED, {
                              "schemaVersion": "nova-multimodal-embed-v1",
                              "taskType": "SINGLE_EMBEDDING",
                              "singleEmbeddingParams": {"embeddingPurpose": "GENERIC_RETRIEVAL",
                                                        "embeddingDimension": 1024,
                                                        "text": {"truncationMode": "END",
                                                                 "value": "red dress"}}}))
    with pytest.raises(EmbedError) as info:
        bedrock.BedrockEmbedder(settings, client=client).embed_text(["red dress"])
    assert info.value.reason == "region" and "us-east-1" in str(info.value)


@pytest.mark.parametrize("payload,needle", [
    ({"inputTextTokenCount": 0, "message": None}, "keys present: inputTextTokenCount, message"),
    ({"embedding": [0.1, 0.2], "message": None}, "expected 256"),
    ({"embedding": [0.0] * 256, "message": None}, "zero"),
    ({"embedding": None, "message": "Image exceeds max pixels allowed."}, "max pixels"),
])
def test_embedding_bad_responses(stubbed, payload, needle):
    settings, client, stub = stubbed(embed_dim=256)
    stub.add_response("invoke_model", body_of(payload), invoke_params(TITAN_EMBED, {
        "inputImage": png_b64(photo()), "embeddingConfig": {"outputEmbeddingLength": 256}}))
    with pytest.raises(EmbedError) as info:
        bedrock.BedrockEmbedder(settings, client=client).embed_one(photo(), image_id="x1")
    assert info.value.reason == "bad_response" and needle in str(info.value)


# --- access check for the setup notebook ----------------------------------------------------

def model_details(model_id: str, status: str, eol: datetime | None) -> dict:
    life = {"status": status}
    if eol:
        life["endOfLifeTime"] = eol
    return {"modelDetails": {
        "modelArn": f"arn:aws:bedrock:us-east-1::foundation-model/{model_id}", "modelId": model_id,
        "modelName": model_id, "providerName": "Amazon", "inputModalities": ["TEXT", "IMAGE"],
        "outputModalities": ["IMAGE"], "customizationsSupported": [],
        "inferenceTypesSupported": ["ON_DEMAND"], "modelLifecycle": life}}


def availability(model_id: str, auth="AUTHORIZED", ent="AVAILABLE", region="AVAILABLE") -> dict:
    return {"modelId": model_id, "agreementAvailability": {"status": "AVAILABLE"},
            "authorizationStatus": auth, "entitlementAvailability": ent, "regionAvailability": region}


TITAN_V2_EOL = datetime(2026, 6, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize("now,mask_status", [(datetime(2026, 3, 1, tzinfo=timezone.utc), "LEGACY"),
                                             (datetime(2026, 7, 9, tzinfo=timezone.utc), "EOL")])
def test_check_access_lifecycle_and_what_to_do(stubbed, now, mask_status):
    settings, client, stub = stubbed("bedrock")
    stub.add_response("get_foundation_model", model_details(TITAN_V2, "LEGACY", TITAN_V2_EOL),
                      {"modelIdentifier": TITAN_V2})
    stub.add_response("get_foundation_model_availability", availability(TITAN_V2), {"modelId": TITAN_V2})
    stub.add_response("get_foundation_model", model_details(TITAN_EMBED, "ACTIVE", None),
                      {"modelIdentifier": TITAN_EMBED})
    stub.add_response("get_foundation_model_availability", availability(TITAN_EMBED, auth="NOT_AUTHORIZED"),
                      {"modelId": TITAN_EMBED})

    table = bedrock.check_access(settings, client=client, now=now)

    assert list(table.columns) == ["check", "model_id", "status", "details", "what_to_do"]
    rows = table.set_index("check")
    assert rows.loc["credentials", "status"] == "present"
    assert rows.loc["credentials", "details"] == "found via env"
    assert rows.loc["mask model", "status"] == mask_status
    assert "2026-06-30" in rows.loc["mask model", "details"]
    todo = rows.loc["mask model", "what_to_do"]
    assert ("retired" in todo) if mask_status == "EOL" else ("Legacy" in todo)
    assert "masker='local'" in todo
    assert rows.loc["embed model", "status"] == "ACTIVE"
    assert "enable model access" in rows.loc["embed model", "what_to_do"]


def test_check_access_errors_become_rows(stubbed):
    settings, client, stub = stubbed("bedrock", aws_region="eu-central-1")
    stub.add_client_error("get_foundation_model", service_error_code="ValidationException",
                          service_message="The provided model identifier is invalid.",
                          http_status_code=400, expected_params={"modelIdentifier": TITAN_V2})
    stub.add_client_error("get_foundation_model", service_error_code="AccessDeniedException",
                          service_message="User is not authorized to perform: bedrock:GetFoundationModel",
                          http_status_code=403, expected_params={"modelIdentifier": TITAN_EMBED})
    rows = bedrock.check_access(settings, client=client).set_index("check")
    assert rows.loc["mask model", "status"] == "not in region"
    assert "us-east-1" in rows.loc["mask model", "what_to_do"]
    assert rows.loc["embed model", "status"] == "cannot check"
    assert "bedrock:GetFoundationModel" in rows.loc["embed model", "what_to_do"]


def test_check_access_without_credentials(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    rows = bedrock.check_access(make_settings()).set_index("check")
    assert rows.loc["credentials", "status"] == "missing"
    assert "aws configure" in rows.loc["credentials", "what_to_do"]
    assert rows.loc["mask model", "status"] == "not checked"
    assert "credentials" in rows.loc["mask model", "what_to_do"]


def test_check_access_with_unknown_profile():
    rows = bedrock.check_access(make_settings(aws_profile="nope")).set_index("check")
    assert rows.loc["credentials", "status"] == "missing"
    assert rows.loc["mask model", "status"] == "not checked"


# --- secrets never leak ---------------------------------------------------------------------

PLANTED_KEY_ID = "AKIAPLANTEDFAKE7Q2XZ"
PLANTED_SECRET = "pLaNtEdSeCrEt/0123456789abcdefghijKLMNOP"
PLANTED_TOKEN = "IQoJb3JpZ2luX2VjEPLANTEDSESSIONTOKEN=="


def test_planted_credentials_never_appear_in_errors_or_access_table(stubbed, monkeypatch, caplog, capsys):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", PLANTED_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", PLANTED_SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", PLANTED_TOKEN)
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []

    settings, client, stub = stubbed()
    cases = [
        ("ValidationException", "This request has been blocked by our content filters.", 400),
        ("ThrottlingException", "Too many requests, please wait before trying again.", 429),
        ("AccessDeniedException", "You don't have access to the model with the specified model ID.", 403),
        ("ValidationException", "This model version has reached the end of its life.", 400),
        # AWS signature errors can echo the credential scope, which holds the key id
        ("InvalidSignatureException", "The request signature we calculated does not match. "
                                      f"Credential={PLANTED_KEY_ID}/20261123/us-east-1/bedrock/aws4_request "
                                      f"secret {PLANTED_SECRET}", 403),
    ]
    masker = titan.BedrockMasker(settings, client=client)
    for code, message, status in cases:
        queue_error(stub, TITAN_V2, code, message, status)
        with pytest.raises(MaskError) as info:
            masker.mask(photo(), "dress")
        seen += [str(info.value), repr(info.value), info.value.reason]
    seen += [repr(masker), str(pickle.dumps(masker))]

    control_settings, control, cstub = stubbed("bedrock")
    cstub.add_response("get_foundation_model", model_details(TITAN_V2, "LEGACY", TITAN_V2_EOL),
                       {"modelIdentifier": TITAN_V2})
    cstub.add_response("get_foundation_model_availability", availability(TITAN_V2), {"modelId": TITAN_V2})
    cstub.add_client_error("get_foundation_model", service_error_code="UnrecognizedClientException",
                           service_message=f"The security token included in the request is invalid: "
                                           f"{PLANTED_KEY_ID}", http_status_code=403,
                           expected_params={"modelIdentifier": TITAN_EMBED})
    table = bedrock.check_access(control_settings, client=control)
    seen += [table.to_string(), repr(table), table.to_json()]

    out = capsys.readouterr()
    seen += [out.out, out.err, caplog.text]
    blob = "\n".join(seen)
    for secret in (PLANTED_KEY_ID, PLANTED_SECRET, PLANTED_TOKEN):
        assert secret not in blob
    assert "found via env" in table.to_string()


# --- benchmark helper runs and reports the figures -----------------------------------------

def test_bench_stub_concurrency_reports_figures():
    from helpers.workbook import benchmarks

    figures = benchmarks.bench_stub_concurrency(n_images=8, delay_s=0.01)
    assert set(figures) == {"bedrock_stub_serial_s", "bedrock_stub_c4_s", "bedrock_stub_speedup"}
    assert figures["bedrock_stub_serial_s"] > 0 and figures["bedrock_stub_c4_s"] > 0


def test_answered_calls_are_ledgered_with_their_cost_and_failed_ones_are_not(stubbed):
    from helpers.workbook import environment

    settings, client, stub = stubbed()
    image = photo()
    body = {"taskType": "INPAINTING",
            "inPaintingParams": {"image": png_b64(image), "maskPrompt": "dress", "text": "dress",
                                 "returnMask": True},
            "imageGenerationConfig": {"numberOfImages": 1, "quality": "standard", "cfgScale": 8.0}}
    answer = {"images": [png_b64(image)], "maskImage": titan_mask_b64(64, 96, (16, 24, 48, 80)), "error": None}
    stub.add_response("invoke_model", body_of(answer), invoke_params(TITAN_V2, body))
    stub.add_response("invoke_model", body_of(answer), invoke_params(TITAN_V2, body))
    stub.add_client_error("invoke_model", service_error_code="AccessDeniedException",
                          service_message="You don't have access to the model with the specified model ID.",
                          http_status_code=403)
    masker = titan.BedrockMasker(settings, client=client)
    masker.mask(image, "dress")
    masker.mask(image, "dress")
    with pytest.raises(MaskError):
        masker.mask(image, "dress")
    usage = environment.created_resources(settings)["bedrock_calls"]
    assert usage.to_dict("records") == [{"model_id": TITAN_V2, "calls": 2, "dollars": pytest.approx(0.02)}]
    lines = [json.loads(l) for l in (settings.cache_dir / bedrock.USAGE_FILE).read_text().splitlines()]
    assert len(lines) == 2 and all(set(l) == {"model_id", "price_usd", "time"} for l in lines)
