"""Lifecycle check: Bedrock's GetFoundationModel status and an optional invoke probe, per model
the settings name, through botocore's Stubber (exact requests, realistic answers and errors)."""
from __future__ import annotations

import io
import json
import warnings
from datetime import date, datetime, timezone

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from helpers import bedrock
from helpers.bedrock import lifecycle as lc
from helpers.settings import load_settings
from conftest import fake_aws_env

NOW = datetime(2026, 11, 20, tzinfo=timezone.utc)
NOVA_LITE = "us.amazon.nova-2-lite-v1:0"


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch, tmp_path):
    fake_aws_env(monkeypatch, tmp_path)


def settings(**kw):
    base = dict(backend="bedrock", max_retries=1, concurrency=1)
    base.update(kw)
    return load_settings(toml_path=None, env={}, **base)


@pytest.fixture()
def clients():
    s = settings()
    control, runtime = bedrock.make_client(s, "bedrock"), bedrock.make_client(s, "bedrock-runtime")
    stubs = [Stubber(control), Stubber(runtime)]
    for st in stubs:
        st.activate()
    yield control, runtime, stubs[0], stubs[1]
    for st in stubs:
        st.assert_no_pending_responses()


def details(model_id: str, status: str, eol: datetime | None = None) -> dict:
    life: dict = {"status": status}
    if eol:
        life["endOfLifeTime"] = eol
    return {"modelDetails": {"modelArn": f"arn:aws:bedrock:us-east-1::foundation-model/{model_id}",
                             "modelId": model_id, "modelName": model_id, "providerName": "Amazon",
                             "modelLifecycle": life}}


def expect_model(cstub, model_id: str, status: str = "ACTIVE", eol: datetime | None = None) -> None:
    """The control stub answers the exact get_foundation_model(model_id) request with that lifecycle."""
    cstub.add_response("get_foundation_model", details(model_id, status, eol), {"modelIdentifier": model_id})


def test_active_model_is_ok(clients):
    control, _, cstub, _ = clients
    expect_model(cstub, lc.TITAN_EMBED)
    row = lc.check_model("embed_model_id", lc.TITAN_EMBED, control=control, now=NOW)
    assert (row["lifecycle"], row["ok"], row["invoke"]) == ("ACTIVE", True, "not probed")
    assert lc.NOVA_EMBED in row["message"] and "re-embedding" in row["message"]


def test_inference_profile_is_checked_through_its_foundation_model(clients):
    control, _, cstub, _ = clients
    expect_model(cstub, "amazon.nova-2-lite-v1:0")
    row = lc.check_model("box_model_id", NOVA_LITE, control=control, now=NOW)
    assert row["lifecycle"] == "ACTIVE" and row["ok"] and row["message"] == "active"


def test_legacy_model_names_date_setting_and_replacement(clients):
    control, _, cstub, _ = clients
    expect_model(cstub, lc.NOVA_CANVAS, "LEGACY", datetime(2026, 12, 30, tzinfo=timezone.utc))
    row = lc.check_model("mask_model_id", lc.NOVA_CANVAS, control=control, now=NOW)
    assert row["lifecycle"] == "LEGACY" and not row["ok"]
    for needle in ("2026-12-30", "mask_model_id (WORKBOOK_MASK_MODEL_ID)", "masker='boxes'", NOVA_LITE):
        assert needle in row["message"]


def test_legacy_past_its_end_of_life_is_eol(clients):
    control, _, cstub, _ = clients
    expect_model(cstub, lc.TITAN_MASK_V2, "LEGACY", datetime(2026, 6, 30, tzinfo=timezone.utc))
    row = lc.check_model("mask_model_id", lc.TITAN_MASK_V2, control=control, now=NOW)
    assert row["lifecycle"] == "EOL" and not row["ok"]
    assert "past its end of life on 2026-06-30" in row["message"]


def test_not_found_is_retired_with_the_replacement(clients):
    control, _, cstub, _ = clients
    cstub.add_client_error("get_foundation_model", "ResourceNotFoundException",
                           "The specified model identifier amazon.titan-image-generator-v1 was not found.",
                           404, expected_params={"modelIdentifier": lc.TITAN_MASK_V1})
    row = lc.check_model("mask_model_id", lc.TITAN_MASK_V1, control=control, now=NOW)
    assert row["lifecycle"] == "EOL / unknown" and not row["ok"]
    msg = row["message"]
    assert "amazon.titan-image-generator-v1 (Titan Image Generator v1) is past its end of life" in msg
    assert "mask_model_id (WORKBOOK_MASK_MODEL_ID)" in msg and "masker='boxes'" in msg


def test_unknown_model_is_named_with_the_setting(clients):
    control, _, cstub, _ = clients
    cstub.add_client_error("get_foundation_model", "ValidationException",
                           "The provided model identifier is invalid.", 400,
                           expected_params={"modelIdentifier": "amazon.nova-typo-v9:0"})
    row = lc.check_model("box_model_id", "us.amazon.nova-typo-v9:0", control=control, now=NOW)
    assert not row["ok"]
    assert row["message"].startswith("us.amazon.nova-typo-v9:0 is unknown to Bedrock or past its end of life")
    assert "box_model_id (WORKBOOK_BOX_MODEL_ID)" in row["message"]


def test_access_denied_to_the_check_is_not_called_retired(clients):
    control, _, cstub, _ = clients
    cstub.add_client_error("get_foundation_model", "AccessDeniedException",
                           "User: arn:aws:iam::123456789012:user/x is not authorized to perform: "
                           "bedrock:GetFoundationModel", 403,
                           expected_params={"modelIdentifier": lc.TITAN_EMBED})
    row = lc.check_model("embed_model_id", lc.TITAN_EMBED, control=control, now=NOW)
    assert row["lifecycle"] == "cannot check" and row["ok"]
    assert "bedrock:GetFoundationModel" in row["message"]


def test_probe_that_answers_with_the_retired_model_error(clients):
    control, runtime, cstub, rstub = clients
    expect_model(cstub, "amazon.nova-2-lite-v1:0")
    rstub.add_client_error("converse", "ValidationException",
                           "This model version has reached the end of its life. Please refer to the "
                           "AWS documentation for more details.", 400,
                           expected_params=lc.probe_request(NOVA_LITE))
    row = lc.check_model("box_model_id", NOVA_LITE, control=control, runtime=runtime, probe=True, now=NOW)
    assert row["invoke"] == "retired" and not row["ok"]
    assert "reached the end of its life" in row["message"] and "box_model_id" in row["message"]


def test_probe_of_an_embedding_model_works(clients):
    control, runtime, cstub, rstub = clients
    expect_model(cstub, lc.NOVA_EMBED)
    payload = json.dumps({"embeddings": [{"embeddingType": "TEXT", "embedding": [0.1] * 256}]}).encode()
    expected = {"modelId": lc.NOVA_EMBED, "contentType": "application/json", "accept": "application/json",
                "body": json.dumps({"schemaVersion": "nova-multimodal-embed-v1",
                                    "taskType": "SINGLE_EMBEDDING",
                                    "singleEmbeddingParams": {"embeddingPurpose": "GENERIC_RETRIEVAL",
                                                              "embeddingDimension": 256,
                                                              "text": {"truncationMode": "END",
                                                                       "value": "probe"}}})}
    rstub.add_response("invoke_model", {"body": StreamingBody(io.BytesIO(payload), len(payload)),
                                        "contentType": "application/json"}, expected)
    row = lc.check_model("embed_model_id", lc.NOVA_EMBED, control=control, runtime=runtime, probe=True, now=NOW)
    assert (row["invoke"], row["ok"]) == ("works", True)


def test_probe_access_denied_says_enable_model_access(clients):
    control, runtime, cstub, rstub = clients
    expect_model(cstub, lc.TITAN_EMBED)
    rstub.add_client_error("invoke_model", "AccessDeniedException",
                           "You don't have access to the model with the specified model ID.", 403,
                           expected_params=lc.probe_request(lc.TITAN_EMBED))
    row = lc.check_model("embed_model_id", lc.TITAN_EMBED, control=control, runtime=runtime,
                         probe=True, region="us-east-1", now=NOW)
    assert row["invoke"] == "access denied" and not row["ok"]
    assert "Model access" in row["message"] and "us-east-1" in row["message"]


def test_lifecycle_table_lists_every_model_and_what_is_used(clients, capsys):
    control, runtime, cstub, rstub = clients
    for mid in (lc.TITAN_MASK_V2, "amazon.nova-2-lite-v1:0", lc.TITAN_EMBED):
        expect_model(cstub, mid)
    table = lc.lifecycle_table(settings(), control=control, now=NOW)
    assert list(table["setting"]) == ["mask_model_id", "box_model_id", "embed_model_id"]
    assert list(table["used"]) == [False, True, True]   # bedrock + auto masker -> boxes
    assert capsys.readouterr().out == ""                 # no probe: nothing paid, nothing estimated


def test_probes_print_their_estimate_first(clients, capsys):
    control, runtime, cstub, rstub = clients
    for mid in (lc.TITAN_MASK_V2, "amazon.nova-2-lite-v1:0", lc.TITAN_EMBED):
        expect_model(cstub, mid)
    rstub.add_response("converse", {"output": {"message": {"role": "assistant", "content": [{"text": "OK"}]}},
                                    "stopReason": "end_turn",
                                    "usage": {"inputTokens": 9, "outputTokens": 1, "totalTokens": 10},
                                    "metrics": {"latencyMs": 210}}, lc.probe_request(NOVA_LITE))
    payload = json.dumps({"embedding": [0.2] * 256, "inputTextTokenCount": 2}).encode()
    rstub.add_response("invoke_model", {"body": StreamingBody(io.BytesIO(payload), len(payload)),
                                        "contentType": "application/json"}, lc.probe_request(lc.TITAN_EMBED))
    table = lc.lifecycle_table(settings(), control=control, runtime=runtime, probe=True, now=NOW)
    assert capsys.readouterr().out.startswith("lifecycle probes: 2 calls, 0 cached, 2 calls, about $")
    assert list(table["invoke"]) == ["not probed (costly image model)", "works", "works"]


def test_choosing_a_retired_mask_model_warns_before_any_call():
    with pytest.warns(lc.RetiredModelWarning, match=r"past its end of life on 2026-06-30.*mask_model_id"):
        lc.warn_if_retired(lc.TITAN_MASK_V2, "mask_model_id", today=date(2026, 11, 20))
    with pytest.warns(lc.RetiredModelWarning, match="Legacy and stops on 2026-09-30"):
        lc.warn_if_retired(lc.NOVA_CANVAS, "mask_model_id", today=date(2026, 8, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert lc.warn_if_retired(lc.TITAN_EMBED, "embed_model_id") is None


def test_get_masker_titan_warns_and_auto_on_bedrock_is_boxes():
    from helpers.maskers import get_masker

    with pytest.warns(lc.RetiredModelWarning, match="amazon.titan-image-generator-v2:0"):
        masker = get_masker(settings(masker="titan"))
    assert type(masker).__name__ == "BedrockMasker"
    assert settings(masker="bedrock").effective_masker == "titan"
    assert settings().effective_masker == "boxes"
    assert settings(backend="local").effective_masker == "local"


def test_access_check_shows_the_box_model_when_boxes_mask(clients):
    control, _, cstub, _ = clients
    expect_model(cstub, "amazon.nova-2-lite-v1:0")
    cstub.add_response("get_foundation_model_availability",
                       {"modelId": "amazon.nova-2-lite-v1:0", "agreementAvailability": {"status": "AVAILABLE"},
                        "authorizationStatus": "AUTHORIZED", "entitlementAvailability": "AVAILABLE",
                        "regionAvailability": "AVAILABLE"}, {"modelId": NOVA_LITE})
    expect_model(cstub, lc.TITAN_EMBED)
    cstub.add_response("get_foundation_model_availability",
                       {"modelId": lc.TITAN_EMBED, "agreementAvailability": {"status": "AVAILABLE"},
                        "authorizationStatus": "AUTHORIZED", "entitlementAvailability": "AVAILABLE",
                        "regionAvailability": "AVAILABLE"}, {"modelId": lc.TITAN_EMBED})
    rows = bedrock.check_access(settings(), client=control, now=NOW).set_index("check")
    assert rows.loc["box model", "model_id"] == NOVA_LITE
    assert rows.loc["box model", "status"] == "ACTIVE" and rows.loc["box model", "what_to_do"] == "ready to use"
