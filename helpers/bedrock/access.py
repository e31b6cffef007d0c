"""The access check of the setup notebook: credentials, and whether each configured model answers."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import boto3
import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound

from helpers.errors import EmbedError, MaskError
from helpers.bedrock.client import SUCCESSORS, _offline_hint, _regions_hint, _setting_name, make_client, make_session, scrub, translate_error
from helpers.bedrock.lifecycle import foundation_id, lifecycle_status
from helpers.settings import Settings


# --- access check for the setup notebook -------------------------------------------------

ACCESS_COLUMNS = ["check", "model_id", "status", "details", "what_to_do"]


def _credentials_row(settings: Settings, session: boto3.Session | None) -> tuple[dict, Any]:
    """Whether credentials are present and where they come from — never their values."""
    row = {"check": "credentials", "model_id": ""}
    try:
        session = session or make_session(settings)
        creds = session.get_credentials()
    except ProfileNotFound:
        return {**row, "status": "missing",
                "details": "the profile named by aws_profile / AWS_PROFILE does not exist",
                "what_to_do": "create it with `aws configure --profile NAME` or fix the name; "
                              "or use backend='local'"}, None
    except BotoCoreError as exc:
        return {**row, "status": "error", "details": scrub(f"{type(exc).__name__}: {exc}"),
                "what_to_do": "fix the AWS configuration (`aws configure list` shows it); "
                              "or use backend='local'"}, None
    if creds is None:
        return {**row, "status": "missing",
                "details": "no credentials in the environment, config files or instance role",
                "what_to_do": "run `aws configure` (or `aws sso login`) and set AWS_PROFILE / "
                              "aws_profile; or use backend='local'"}, session
    source = getattr(creds, "method", None) or "unknown"
    profile = f", profile {session.profile_name!r}" if settings.aws_profile else ""
    return {**row, "status": "present", "details": f"found via {source}{profile}",
            "what_to_do": "nothing"}, session


def _fmt_date(value: Any) -> str:
    return value.date().isoformat() if isinstance(value, datetime) else (str(value) if value else "")


def _model_row(check: str, model_id: str, settings: Settings, client: Any,
               now: datetime, error_cls: type[Exception]) -> dict:
    row = {"check": check, "model_id": model_id}
    region = settings.aws_region
    offline = _offline_hint(error_cls)
    try:
        details = client.get_foundation_model(modelIdentifier=foundation_id(model_id))["modelDetails"]  # profiles: their model
    except (ClientError, BotoCoreError) as exc:
        err = translate_error(exc, model_id=model_id, region=region, error_cls=error_cls)
        status = {"model_unavailable": "EOL / unknown", "region": "not in region",
                  "access_denied": "cannot check"}.get(err.reason, "not checked")
        todo = str(err)
        if err.reason == "access_denied":
            todo = (f"your identity may not call bedrock:GetFoundationModel (this check only; "
                    f"invoking may still work) — ask for bedrock read permissions, or try a run")
        return {**row, "status": status, "details": scrub(str(exc)), "what_to_do": todo}

    life = details.get("modelLifecycle") or {}
    status, eol = lifecycle_status(details, now)
    notes = [f"lifecycle {life.get('status') or 'unknown'}"]
    if eol:
        notes.append(f"end of life {_fmt_date(eol)}")
    if life.get("publicExtendedAccessTime"):
        notes.append(f"extended access (higher price) from {_fmt_date(life['publicExtendedAccessTime'])}")

    access = None
    try:
        avail = client.get_foundation_model_availability(modelId=model_id)
        access = (avail.get("authorizationStatus"), avail.get("entitlementAvailability"),
                  avail.get("regionAvailability"))
        notes.append(f"authorization {access[0]}, entitlement {access[1]}, region {access[2]}")
    except (ClientError, BotoCoreError) as exc:
        notes.append(f"access not checked ({type(exc).__name__})")

    succ = SUCCESSORS.get(model_id)
    other = f"pick another model id{f' (e.g. {succ})' if succ else ''} in {_setting_name(error_cls)}"
    if status == "EOL":
        todo = f"retired: calls fail. {other}, or use {offline}"
    elif access and access[2] == "NOT_AVAILABLE":
        todo = (f"not offered in {region}: {_regions_hint(model_id)}; set aws_region, "
                f"or use {offline}")
    elif access and (access[0] == "NOT_AUTHORIZED" or access[1] == "NOT_AVAILABLE"):
        todo = (f"enable model access in the Bedrock console (Model access) for {model_id} in "
                f"{region}; or use {offline}")
    elif status == "LEGACY":
        when = f" on {_fmt_date(eol)}" if eol else ""
        todo = (f"Legacy: works only if your account used it recently (new accounts cannot start); "
                f"it stops{when}. Plan to {other}, or use {offline}")
    elif status == "ACTIVE":
        todo = "ready to use"
    else:
        todo = f"unexpected lifecycle status {status!r}: try a small run first"
    return {**row, "status": status, "details": "; ".join(notes), "what_to_do": todo}


def check_access(settings: Settings, *, session: boto3.Session | None = None, client: Any = None,
                 now: datetime | None = None) -> pd.DataFrame:
    """A table for the setup notebook: credentials present (and their source, never values),
    and for the mask and embedding models their lifecycle (ACTIVE / LEGACY / EOL), access and
    what to do. Makes only free control-plane calls (GetFoundationModel[Availability])."""
    now = now or datetime.now(timezone.utc)
    cred_row, session = _credentials_row(settings, session)
    rows = [cred_row]
    if client is None and cred_row["status"] != "present":
        session = None  # nothing to sign with: model checks would only fail (after slow probing)
    if client is None and session is not None:
        try:
            client = make_client(settings, "bedrock", session=session)
        except BotoCoreError as exc:
            rows.append({"check": "client", "model_id": "", "status": "error",
                         "details": scrub(str(exc)), "what_to_do": "set aws_region / fix AWS config"})
    mask_check = (("box model", settings.box_model_id) if settings.effective_masker == "boxes"
                  else ("mask model", settings.mask_model_id))
    for check, model_id, cls in ((*mask_check, MaskError),
                                 ("embed model", settings.embed_model_id, EmbedError)):
        if client is None:
            rows.append({"check": check, "model_id": model_id, "status": "not checked",
                         "details": "no AWS credentials or session",
                         "what_to_do": "fix the credentials first (see the credentials row)"})
        else:
            rows.append(_model_row(check, model_id, settings, client, now, cls))
    return pd.DataFrame(rows, columns=ACCESS_COLUMNS)
