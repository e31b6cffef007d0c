"""The box masker: Converse request (exact, through Stubber), answer parsing, 0-1000 -> pixels,
and the offline mask clipped to (or guided by) the box."""
from __future__ import annotations

import base64
import io
import pickle

import numpy as np
import pytest
from botocore.stub import Stubber
from PIL import Image

from helpers import bedrock
from helpers.bedrock import converse as bc
from helpers.maskers.boxes import BoxMasker
from helpers.bedrock.prices import token_cost
from helpers.errors import MaskError
from helpers.settings import BOX_MODEL_DEFAULT, BOX_PROMPT_DEFAULT, load_settings
from conftest import fake_aws_env


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch, tmp_path):
    fake_aws_env(monkeypatch, tmp_path)
    _TMP[0] = tmp_path


_TMP = [None]


class FullMasker:
    """An offline masker without box support: everything but a 2-px frame is "garment"."""

    model_id = "full-test"
    price_per_call = 0.0
    parallel = "processes"

    def mask(self, image, prompt, *, image_id=None):
        m = np.zeros((image.height, image.width), dtype=bool)
        m[2:-2, 2:-2] = True
        return m


class BoxAwareMasker(FullMasker):
    model_id = "box-aware-test"

    def __init__(self):
        self.boxes = []

    def mask(self, image, prompt, *, image_id=None, box=None):
        self.boxes.append(box)
        m = np.zeros((image.height, image.width), dtype=bool)
        left, top, right, bottom = box
        m[top + 1:bottom - 1, left + 1:right - 1] = True
        return m


def make(inner=None, **overrides):
    values = dict(backend="bedrock", max_retries=1, concurrency=1, cache_dir=_TMP[0] / "cache")
    values.update(overrides)
    settings = load_settings(toml_path=None, env={}, **values)
    client = bedrock.make_client(settings, "bedrock-runtime")
    stub = Stubber(client)
    stub.activate()
    return BoxMasker(settings, inner=inner or FullMasker(), client=client), stub


def photo(w=200, h=300) -> Image.Image:
    rng = np.random.default_rng(1)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def answer(text: str, stop: str = "end_turn", tokens=(1650, 28)) -> dict:
    return {"output": {"message": {"role": "assistant", "content": [{"text": text}]}},
            "stopReason": stop,
            "usage": {"inputTokens": tokens[0], "outputTokens": tokens[1], "totalTokens": sum(tokens)},
            "metrics": {"latencyMs": 840}}


def expected_request(image: Image.Image, garment: str = "dress") -> dict:
    prompt = BOX_PROMPT_DEFAULT.replace("{garment}", garment)
    return {"modelId": BOX_MODEL_DEFAULT,
            "messages": [{"role": "user", "content": [
                {"image": {"format": "png", "source": {"bytes": png_bytes(image)}}},
                {"text": prompt}]}],
            "inferenceConfig": {"maxTokens": 200, "temperature": 0.0}}


# --- request ---------------------------------------------------------------------------------

def test_default_prompt_and_model():
    prompt = bc.box_prompt(BOX_PROMPT_DEFAULT, "dress")
    assert BOX_MODEL_DEFAULT == "us.amazon.nova-2-lite-v1:0"
    assert prompt.startswith("Find the dress the person in this photo wears. Answer with JSON only")
    assert '{"boxes": [[x1, y1, x2, y2]]}' in prompt and "0-1000 scale" in prompt


def test_exact_converse_request_and_box_clips_the_offline_mask():
    masker, stub = make()
    image = photo()
    stub.add_response("converse", answer('{"boxes": [[250, 100, 750, 900]]}'), expected_request(image))
    mask = masker.mask(image, "dress", image_id="a1")
    stub.assert_no_pending_responses()
    # box 0-1000 -> pixels of 200x300: (50, 30, 150, 270); grown by 5% -> (45, 18, 155, 282)
    rows, cols = np.nonzero(mask)
    assert (cols.min(), cols.max(), rows.min(), rows.max()) == (45, 154, 18, 281)
    assert mask.shape == (300, 200) and mask.dtype == bool


def test_box_aware_offline_masker_gets_the_pixel_box_as_prior():
    inner = BoxAwareMasker()
    masker, stub = make(inner)
    image = photo()
    stub.add_response("converse", answer("[100, 0, 500, 500]"), expected_request(image))
    mask = masker.mask(image, "dress")
    assert inner.boxes == [(20, 0, 100, 150)]
    assert mask.sum() == (150 - 2) * (100 - 20 - 2)


def test_large_photo_is_sent_at_1024_and_box_maps_to_the_original_size():
    masker, stub = make(BoxAwareMasker())
    image = photo(2048, 3072)
    small = image.resize((683, 1024), Image.Resampling.LANCZOS)
    stub.add_response("converse", answer('{"boxes": [[0, 500, 1000, 1000]]}'), expected_request(small))
    assert masker.find_box(image, "dress") == (0, 1536, 2048, 3072)


def test_usage_ledger_prices_the_reported_tokens(tmp_path):
    masker, stub = make()
    image = photo()
    stub.add_response("converse", answer("[0, 0, 1000, 1000]", tokens=(1650, 28)), expected_request(image))
    masker.mask(image, "dress")
    from helpers.bedrock import usage_summary

    usage = usage_summary(masker._settings)
    assert list(usage["model_id"]) == [BOX_MODEL_DEFAULT]
    assert usage["dollars"].iloc[0] == pytest.approx(1650 * 0.33e-6 + 28 * 2.75e-6)
    assert masker.price_per_call == pytest.approx(token_cost(BOX_MODEL_DEFAULT, 1800, 40))


# --- parsing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, boxes", [
    ('{"boxes": [[120, 80, 880, 960]]}', [(120, 80, 880, 960)]),
    ('Sure! Here is the box:\n```json\n{"boxes": [[120, 80, 880, 960]]}\n```\nHope this helps.',
     [(120, 80, 880, 960)]),
    ('The dress is at {"box": [120, 80, 880, 960]} in the image.', [(120, 80, 880, 960)]),
    ('[{"label": "dress", "bbox": {"x1": 10, "y1": 20, "x2": 30, "y2": 40}}]', [(10, 20, 30, 40)]),
    ('{"boxes": [[100, 100, 500, 400], [120, 380, 520, 900]]}', [(100, 100, 500, 400), (120, 380, 520, 900)]),
    ('{"boxes": [[880, 960, 120, 80]]}', [(120, 80, 880, 960)]),          # corners swapped
    ('{"boxes": [[-20, 50, 1040, 1200]]}', [(0, 50, 1000, 1000)]),        # outside the scale: clipped
    ('{"boxes": [[1100, 50, 1300, 400], [10, 10, 500, 500]]}', [(10, 10, 500, 500)]),  # one fully outside
])
def test_parse_boxes(text, boxes):
    assert bc.parse_boxes(text) == [tuple(float(v) for v in b) for b in boxes]


@pytest.mark.parametrize("text, reason", [
    ('{"boxes": []}', "no_garment"),
    ('There is no dress in this photo. {"boxes": []}', "no_garment"),
    ('{"boxes": [[1200, 1100, 1300, 1500]]}', "no_garment"),
    ("I'm sorry, but I can't help with identifying clothing on people in this image.", "refused"),
    ("The person wears a red dress in the middle of the image.", "no_box"),
])
def test_parse_boxes_failures(text, reason):
    with pytest.raises(bc.BoxParseError) as info:
        bc.parse_boxes(text)
    assert info.value.reason == reason


def test_several_boxes_are_joined():
    masker, stub = make(BoxAwareMasker())
    image = photo()
    stub.add_response("converse", answer('Top and skirt:\n```\n{"boxes": [[100, 100, 500, 400], '
                                         '[120, 380, 600, 900]]}\n```'), expected_request(image))
    assert masker.find_box(image, "dress") == (20, 30, 120, 270)


@pytest.mark.parametrize("text, stop, reason, needle", [
    ('{"boxes": []}', "end_turn", "no_garment", "found no 'dress'"),
    ("I'm sorry, I cannot help with that request.", "end_turn", "refused", "box_prompt"),
    ('{"boxes": [[100, 1', "max_tokens", "bad_response", "cut off at maxTokens"),
    ("", "content_filtered", "content_filter", "declined the photo"),
])
def test_answers_without_a_box_become_mask_errors(text, stop, reason, needle):
    masker, stub = make()
    image = photo()
    stub.add_response("converse", answer(text, stop), expected_request(image))
    with pytest.raises(MaskError) as info:
        masker.mask(image, "dress", image_id="x9")
    assert info.value.reason == reason and needle in str(info.value) and "'x9'" in str(info.value)


def test_box_with_nothing_of_the_offline_mask_inside_is_no_garment():
    class TopLeft(FullMasker):
        def mask(self, image, prompt, *, image_id=None):
            m = np.zeros((image.height, image.width), dtype=bool)
            m[:20, :20] = True
            return m

    masker, stub = make(TopLeft())
    image = photo()
    stub.add_response("converse", answer("[500, 500, 1000, 1000]"), expected_request(image))
    with pytest.raises(MaskError, match="nothing inside the box"):
        masker.mask(image, "dress")


def test_retired_box_model_names_the_box_setting():
    masker, stub = make(box_model_id="us.amazon.nova-lite-v1:0")
    image = photo()
    req = expected_request(image)
    req["modelId"] = "us.amazon.nova-lite-v1:0"
    stub.add_client_error("converse", "ValidationException",
                          "This model version has reached the end of its life.", 400, expected_params=req)
    with pytest.raises(MaskError) as info:
        masker.mask(image, "dress")
    assert info.value.reason == "model_unavailable"
    assert "box_model_id (WORKBOOK_BOX_MODEL_ID)" in str(info.value)


def test_throttled_converse_is_throttled():
    masker, stub = make()
    image = photo()
    stub.add_client_error("converse", "ThrottlingException", "Too many requests, please wait.", 429,
                          expected_params=expected_request(image))
    with pytest.raises(MaskError) as info:
        masker.mask(image, "dress")
    assert info.value.reason == "throttled"


def test_cache_identity_and_pickling():
    a, _ = make()
    b, _ = make(box_prompt="Box the {garment}. JSON [x1,y1,x2,y2] on 0-1000.")
    assert a.model_id == f"boxes:{BOX_MODEL_DEFAULT}+full-test"
    assert a.cache_params != b.cache_params
    clone = pickle.loads(pickle.dumps(a))
    assert clone._client is None and clone.model_id == a.model_id


def test_get_masker_boxes_wraps_the_offline_masker():
    from helpers.maskers import get_masker
    from helpers.maskers.parser import ParserMasker

    settings = load_settings(toml_path=None, env={}, backend="bedrock")
    masker = get_masker(settings)
    # the default offline masker (the #14 parser) takes the box natively
    assert isinstance(masker, BoxMasker) and isinstance(masker.inner, ParserMasker)
    assert masker.inner_takes_box


class ScoringMasker(BoxAwareMasker):
    """A box-aware offline masker that scores its masks, like the parser."""

    def mask(self, image, prompt, *, image_id=None, box=None):
        self.last_quality = 0.42
        return super().mask(image, prompt, image_id=image_id, box=box)


def test_box_masker_passes_on_the_offline_quality_score_per_thread():
    import threading

    masker, stub = make(ScoringMasker())
    image = photo()
    assert masker.last_quality is None
    stub.add_response("converse", answer("[100, 0, 500, 500]"), expected_request(image))
    masker.mask(image, "dress")
    assert masker.last_quality == 0.42   # the pipeline flags doubtful masks on the Bedrock track too
    seen = []
    other = threading.Thread(target=lambda: seen.append(masker.last_quality))
    other.start()
    other.join()
    assert seen == [None]   # concurrent Bedrock calls: each thread reads its own last mask's score
    assert pickle.loads(pickle.dumps(masker)).last_quality is None
