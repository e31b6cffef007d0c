"""Which of the Bedrock models the settings name are still alive, before anything is paid for.

Why: the Bedrock track was built on image models that AWS has since retired (Titan Image
Generator v2: end of life 2026-06-30; Nova Canvas: 2026-09-30). A workshop run against a real
account would otherwise fail at its first mask call with a terse AWS message. This module
(1) knows the retirement dates, so choosing a retired model warns before any call
(`warn_if_retired`, no network), and (2) asks Bedrock itself: `GetFoundationModel`
(`modelDetails.modelLifecycle.status`, ACTIVE or LEGACY: the enum in botocore's service model)
and, when asked, one tiny invoke per model, for the setup notebook's table (`lifecycle_table`).
A retired or unknown model gets a message that names it, says it is past its end of life,
and names the setting and the live replacement.

Facts: /work/shared/notes/bedrock.md, "Update (2026-11)". Inference profiles
("us.amazon.nova-2-lite-v1:0") are not foundation models: their lifecycle is read from the
foundation model id without the geography prefix.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from helpers import cost
from helpers.bedrock.client import (NOVA_CANVAS, NOVA_EMBED, TITAN_EMBED, TITAN_MASK_V1, TITAN_MASK_V2,
                                    make_client, make_session, scrub)
from helpers.settings import BOX_MODEL_DEFAULT, Settings

_BOXES = (f"masker='boxes' (WORKBOOK_MASKER=boxes): a box from Nova 2 Lite "
          f"(box_model_id={BOX_MODEL_DEFAULT}) and a pixel-exact mask from the offline masker")


@dataclass(frozen=True)
class Retirement:
    """A model AWS has retired (or announced): when, and what to use instead."""

    label: str
    end_of_life: date | None      # None: gone, date unknown (dropped from AWS's model list)
    replacement: str
    source: str


#: Read 2026-11 (bedrock.md). Titan IG v2: AWS model card; Nova Canvas: secondary sources and an
#: aws-samples repository that moved off it (not an AWS page: unverified); Titan IG v1: no longer
#: in AWS's model list.
RETIRED: dict[str, Retirement] = {
    TITAN_MASK_V2: Retirement("Titan Image Generator v2", date(2026, 6, 30), _BOXES,
                              "AWS model card (Legacy, EOL 2026-06-30), read 2026-11"),
    TITAN_MASK_V1: Retirement("Titan Image Generator v1", None, _BOXES,
                              "absent from AWS's supported-models list, read 2026-11"),
    NOVA_CANVAS: Retirement("Nova Canvas", date(2026, 9, 30), _BOXES,
                            "third-party pages and an aws-samples repo, read 2026-11 (unverified)"),
}

#: Live replacements for models that still work but have a successor (shown as advice only).
SUCCESSOR: dict[str, str] = {TITAN_EMBED: NOVA_EMBED}

_GEO_PREFIXES = ("us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca.")
_ENV = {"mask_model_id": "WORKBOOK_MASK_MODEL_ID", "box_model_id": "WORKBOOK_BOX_MODEL_ID",
        "embed_model_id": "WORKBOOK_EMBED_MODEL_ID"}

LIFECYCLE_COLUMNS = ["setting", "model_id", "used", "lifecycle", "invoke", "ok", "message"]


class RetiredModelWarning(UserWarning):
    """A setting names a model that is past (or near) its end of life."""


def foundation_id(model_id: str) -> str:
    """The foundation model behind an inference profile id ("us.amazon.x" -> "amazon.x")."""
    for prefix in _GEO_PREFIXES:
        if model_id.startswith(prefix):
            return model_id[len(prefix):]
    return model_id


def _setting(setting: str) -> str:
    env = _ENV.get(setting)
    return f"{setting} ({env})" if env else setting


def retired_message(model_id: str, setting: str, *, said: str | None = None) -> str:
    """What a user reads when a setting names a retired or unknown model: the model, that it is
    past its end of life, the setting to change and the live replacement."""
    info = RETIRED.get(foundation_id(model_id))
    why = f" (Bedrock said: {said})" if said else ""
    if info is None:
        return (f"{model_id} is unknown to Bedrock or past its end of life{why}. Change the setting "
                f"{_setting(setting)} to a live model: the setup notebook's lifecycle table lists "
                f"the ones your account can use.")
    when = f" on {info.end_of_life.isoformat()}" if info.end_of_life else ""
    return (f"{model_id} ({info.label}) is past its end of life{when}: Bedrock no longer serves it"
            f"{why}. Change the setting {_setting(setting)}; the live replacement is {info.replacement}.")


def warn_if_retired(model_id: str, setting: str, *, today: date | None = None) -> str | None:
    """Warn (no network) before a retired or soon-retired model is used; return the message."""
    info = RETIRED.get(foundation_id(model_id))
    if info is None:
        return None
    today = today or datetime.now(timezone.utc).date()
    if info.end_of_life is None or info.end_of_life <= today:
        message = retired_message(model_id, setting)
    else:
        message = (f"{model_id} ({info.label}) is Legacy and stops on {info.end_of_life.isoformat()}; "
                   f"new accounts cannot start using it. Plan to change {_setting(setting)}: the "
                   f"live replacement is {info.replacement}.")
    warnings.warn(message, RetiredModelWarning, stacklevel=2)
    return message


# --- asking Bedrock ----------------------------------------------------------------------

def model_kind(model_id: str) -> str:
    """"image" (INPAINTING mask models), "embed", or "converse" (Nova vision/text models)."""
    fid = foundation_id(model_id)
    if fid in (TITAN_MASK_V2, TITAN_MASK_V1, NOVA_CANVAS) or "image-generator" in fid or "canvas" in fid:
        return "image"
    if "embed" in fid:
        return "embed"
    return "converse"


def probe_request(model_id: str) -> dict | None:
    """The smallest paid call that proves a model answers, as boto3 keyword arguments; None
    for the image models (a probe would cost about $0.01 and the lifecycle answer suffices)."""
    kind = model_kind(model_id)
    if kind == "image":
        return None
    if kind == "embed":
        fid = foundation_id(model_id)
        if fid == NOVA_EMBED:
            body = {"schemaVersion": "nova-multimodal-embed-v1", "taskType": "SINGLE_EMBEDDING",
                    "singleEmbeddingParams": {"embeddingPurpose": "GENERIC_RETRIEVAL",
                                              "embeddingDimension": 256,
                                              "text": {"truncationMode": "END", "value": "probe"}}}
        else:
            body = {"inputText": "probe", "embeddingConfig": {"outputEmbeddingLength": 256}}
        return {"modelId": model_id, "body": json.dumps(body),
                "contentType": "application/json", "accept": "application/json"}
    return {"modelId": model_id,
            "messages": [{"role": "user", "content": [{"text": "Answer with the word OK."}]}],
            "inferenceConfig": {"maxTokens": 5, "temperature": 0.0}}


#: Rough upper bound of one probe, in dollars (a few tokens); shown before probes run.
PROBE_PRICE_USD = 0.00002


def _error_parts(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return err.get("Code", ""), err.get("Message", "") or str(exc)
    return type(exc).__name__, str(exc)


def _is_gone(code: str, message: str) -> bool:
    low = message.lower()
    return (code == "ResourceNotFoundException" or "end of its life" in low or "end-of-life" in low
            or "model identifier is invalid" in low or "has been retired" in low
            or "legacy" in low)


def lifecycle_status(details: dict, now: datetime) -> tuple[str, Any]:
    """Bedrock's lifecycle status of a model (`get_foundation_model`'s `modelDetails`) and its end of
    life (made timezone-aware when it is a datetime); "EOL" once that date has passed, whatever the
    status still says."""
    life = details.get("modelLifecycle") or {}
    status = str(life.get("status") or "unknown")
    eol = life.get("endOfLifeTime")
    if isinstance(eol, datetime) and eol.tzinfo is None:
        eol = eol.replace(tzinfo=timezone.utc)
    if isinstance(eol, datetime) and eol <= now:
        status = "EOL"
    return status, eol


def check_model(setting: str, model_id: str, *, control: Any, runtime: Any = None,
                probe: bool = False, region: str = "", used: bool = True,
                now: datetime | None = None) -> dict:
    """One row of the lifecycle table: Bedrock's lifecycle status and, if `probe`, whether an
    invoke works. Free control-plane call first; the probe is a paid call of a few tokens."""
    row = {"setting": setting, "model_id": model_id, "used": used, "lifecycle": "", "invoke": "not probed"}
    now = now or datetime.now(timezone.utc)
    messages: list[str] = []
    ok = True
    try:
        details = control.get_foundation_model(modelIdentifier=foundation_id(model_id))["modelDetails"]
        status, eol = lifecycle_status(details, now)
        if status == "EOL":
            ok = False
            messages.append(retired_message(model_id, setting))
        elif status == "LEGACY":
            ok = False
            when = f" on {eol.date().isoformat()}" if isinstance(eol, datetime) else ""
            info = RETIRED.get(foundation_id(model_id))
            alt = f" The live replacement is {info.replacement}." if info else ""
            messages.append(f"{model_id} is Legacy: it stops{when}, and accounts that have not used it "
                            f"recently cannot call it. Change {_setting(setting)}.{alt}")
        elif status == "ACTIVE":
            succ = SUCCESSOR.get(foundation_id(model_id))
            messages.append("active" + (f"; its successor is {succ} (vectors of the two never "
                                        f"share a collection: switching means re-embedding)" if succ else ""))
        else:
            messages.append(f"unexpected lifecycle status {status!r}: try a small run first")
        row["lifecycle"] = status
    except (ClientError, BotoCoreError) as exc:
        code, said = _error_parts(exc)
        if code == "AccessDeniedException":
            row["lifecycle"] = "cannot check"
            messages.append("your identity may not call bedrock:GetFoundationModel (this check only; "
                            "invoking may still work): ask for Bedrock read permissions, or probe=True")
        elif _is_gone(code, said) or code == "ValidationException":
            row["lifecycle"], ok = "EOL / unknown", False
            messages.append(retired_message(model_id, setting, said=f"{code}: {said}"))
        else:
            row["lifecycle"] = "not checked"
            messages.append(f"{code}: {said}")
    if probe and runtime is not None:
        request = probe_request(model_id)
        if request is None:
            row["invoke"] = "not probed (costly image model)"
        else:
            try:
                if "messages" in request:
                    runtime.converse(**request)
                else:
                    runtime.invoke_model(**request)["body"].read()
                row["invoke"] = "works"
            except (ClientError, BotoCoreError) as exc:
                code, said = _error_parts(exc)
                ok = False
                if code == "AccessDeniedException":
                    row["invoke"] = "access denied"
                    messages.append(f"enable model access for {model_id} in the Bedrock console "
                                    f"(Model access){f' in {region}' if region else ''} and allow "
                                    f"bedrock:InvokeModel in your IAM policy")
                elif _is_gone(code, said):
                    row["invoke"] = "retired"
                    messages.append(retired_message(model_id, setting, said=f"{code}: {said}"))
                else:
                    row["invoke"] = f"failed ({code})"
                    messages.append(f"the probe failed: {code}: {said}")
    row["ok"] = ok
    row["message"] = scrub(" ".join(dict.fromkeys(messages)))
    return row


def lifecycle_table(settings: Settings, *, control: Any = None, runtime: Any = None,
                    probe: bool = False, now: datetime | None = None) -> pd.DataFrame:
    """For every model the settings name (mask, box, embedding): lifecycle, invoke, what to do.

    `used` marks the models this configuration calls. With `probe=True` each non-image model
    gets one tiny paid call; its estimate is printed first and checked against max_spend_usd.
    """
    models = [("mask_model_id", settings.mask_model_id, settings.effective_masker == "titan"),
              ("box_model_id", settings.box_model_id, settings.effective_masker == "boxes"),
              ("embed_model_id", settings.embed_model_id, settings.backend == "bedrock")]
    if control is None or (probe and runtime is None):
        session = make_session(settings)
        control = control or make_client(settings, "bedrock", session=session)
        if probe and runtime is None:
            runtime = make_client(settings, "bedrock-runtime", session=session)
    if probe:
        n = sum(probe_request(m) is not None for _, m, _ in models)
        est = cost.estimate(n, 0, PROBE_PRICE_USD, "lifecycle probes", unit="calls")
        print(est)
        cost.check_budget(est, settings.max_spend_usd)
    rows = [check_model(setting, model_id, control=control, runtime=runtime, probe=probe,
                        region=settings.aws_region, used=used, now=now)
            for setting, model_id, used in models]
    return pd.DataFrame(rows, columns=LIFECYCLE_COLUMNS)
