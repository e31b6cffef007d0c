"""The Bedrock client: model facts, session and client, error translation, secrets scrubbing,
and the shared plumbing of every Bedrock model (`BedrockModel`).

Why: every Bedrock failure must reach the user as a `MaskError` / `EmbedError` whose `reason`
fills a failure table and whose message says what to do; nothing here prints or returns
credentials (they stay in boto3's chain) and any AWS message quoted is scrubbed first.
Facts used (model ids, limits, lifecycle) are in ../shared/notes/bedrock.md.
"""
from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (BotoCoreError, ClientError, ConnectionClosedError,
                                 ConnectTimeoutError, EndpointConnectionError,
                                 NoCredentialsError, NoRegionError, PartialCredentialsError,
                                 ProfileNotFound, ReadTimeoutError)

from helpers import secrets
from helpers.bedrock.failures import classify
from helpers.errors import MaskError
from helpers.bedrock.usage import record_usage
from helpers.settings import Settings


# --- model facts -------------------------------------------------------------------------

TITAN_MASK_V2 = "amazon.titan-image-generator-v2:0"
TITAN_MASK_V1 = "amazon.titan-image-generator-v1"
NOVA_CANVAS = "amazon.nova-canvas-v1:0"
TITAN_EMBED = "amazon.titan-embed-image-v1"
NOVA_EMBED = "amazon.nova-2-multimodal-embeddings-v1:0"

MODEL_LABELS = {
    TITAN_MASK_V2: "Titan Image Generator v2 mask",
    TITAN_MASK_V1: "Titan Image Generator v1 mask",
    NOVA_CANVAS: "Nova Canvas mask",
    TITAN_EMBED: "Titan Multimodal Embeddings",
    NOVA_EMBED: "Nova Multimodal Embeddings",
}

#: Regions AWS's tables listed for each model (bedrock.md); only us-east-1/us-west-2 are
#: confirmed for the image models. Used to tell "this region lacks the model" from
#: "this model is gone" when Bedrock answers "model identifier is invalid".
MODEL_REGIONS: dict[str, tuple[str, ...]] = {
    TITAN_MASK_V2: ("us-east-1", "us-west-2", "ap-south-1", "eu-west-1", "eu-west-2"),
    TITAN_MASK_V1: ("us-east-1", "us-west-2", "ap-south-1", "eu-west-1", "eu-west-2"),
    NOVA_CANVAS: ("us-east-1", "eu-west-1", "ap-northeast-1"),
    TITAN_EMBED: ("us-east-1", "us-west-2", "ap-south-1", "ap-southeast-2", "ca-central-1",
                  "eu-west-1", "eu-west-2", "eu-west-3", "sa-east-1"),
    NOVA_EMBED: ("us-east-1",),
}

SUCCESSORS = {TITAN_MASK_V1: TITAN_MASK_V2, TITAN_MASK_V2: NOVA_CANVAS, TITAN_EMBED: NOVA_EMBED}

MASK_MAX_SIDE = 1408            # Titan / Nova Canvas: longer side of the input image
EMBED_MAX_SIDE = 2048           # Titan Multimodal Embeddings: at most 2048 x 2048
MAX_REQUEST_IMAGE_BYTES = 5_000_000  # 5 MB, applied to the base64 text (the stricter reading)
MAX_PROMPT_CHARS = 512
#: Models whose batch support is documented: AWS "Supported Regions and models for batch
#: inference" lists Titan Multimodal Embeddings G1 (read 2026-11). Nova Multimodal Embeddings was
#: not in that table when read (unverified): it embeds on demand unless asked to batch (`force=True`).
BATCH_MODELS: dict[str, str] = {
    TITAN_EMBED: "AWS batch inference model table, read 2026-11",
}
EMBED_DIMS_BY_MODEL = {TITAN_EMBED: (256, 384, 1024), NOVA_EMBED: (256, 384, 1024, 3072)}

_THROTTLE_CODES = {"ThrottlingException", "TooManyRequestsException", "Throttling",
                   "ServiceQuotaExceededException"}
_SERVICE_CODES = {"ModelTimeoutException", "InternalServerException", "ServiceUnavailableException",
                  "ModelNotReadyException", "ModelErrorException", "InternalFailure",
                  "ServiceUnavailable"}
_BAD_CREDENTIAL_CODES = {"UnrecognizedClientException", "InvalidSignatureException",
                         "ExpiredTokenException", "ExpiredToken", "InvalidClientTokenId",
                         "SignatureDoesNotMatch", "IncompleteSignature"}
_POLICY_WORDS = re.compile(r"responsible ai|acceptable use|\baup\b")
_GONE_WORDS = ("end of its life", "legacy", "end-of-life", "has been retired")
_MISSING_WORDS = ("model identifier is invalid", "not supported in this region",
                  "isn't supported in this region", "not available in this region",
                  "could not resolve the foundation model", "model not found")

def _is_content_filter(low: str) -> bool:
    """Bedrock's filter messages: "...blocked by our content filters", sometimes naming the
    AUP / Responsible AI policy instead."""
    return "content filter" in low or ("blocked" in low and bool(_POLICY_WORDS.search(low)))


# --- secrets hygiene ---------------------------------------------------------------------

_SECRET_LIKE = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])")


def scrub(text: str) -> str:
    """Remove anything that looks like an AWS credential from text we show (AWS messages can
    echo a key id, e.g. SignatureDoesNotMatch): helpers.secrets, plus any bare 40-character run."""
    text = secrets.redact_text(text, secrets.known_secrets_cached(), mark="<redacted>")
    return _SECRET_LIKE.sub("<redacted>", text)


# --- clients -----------------------------------------------------------------------------

def make_session(settings: Settings) -> boto3.Session:
    """A boto3 session from the settings' profile and region (credentials: boto3's chain)."""
    return boto3.Session(profile_name=settings.aws_profile, region_name=settings.aws_region)


def client_config(settings: Settings) -> Config:
    """botocore's own retries (adaptive mode backs off and rate-limits on throttling) and a
    connection pool at least as large as the thread pool, so threads never queue for sockets."""
    return Config(retries={"mode": "adaptive", "max_attempts": settings.max_retries},
                  max_pool_connections=max(10, settings.concurrency),
                  connect_timeout=10, read_timeout=120)


def make_client(settings: Settings, service: str = "bedrock-runtime",
                *, session: boto3.Session | None = None):
    """A botocore client: "bedrock-runtime" to invoke models, "bedrock" for the control plane
    (lifecycle checks). Clients are thread-safe; sessions are not, so build clients up front."""
    session = session or make_session(settings)
    return session.client(service, config=client_config(settings))


# --- errors ------------------------------------------------------------------------------

def _regions_hint(model_id: str) -> str:
    regions = MODEL_REGIONS.get(model_id)
    if not regions:
        return "check the Bedrock console's model catalogue for the regions that serve it"
    return ("AWS's tables list it in " + ", ".join(regions)
            + " (this changes; the Bedrock console's model catalogue is the authority)")


def _offline_hint(error_cls: type[Exception]) -> str:
    return ("masker='local' (the offline masker)" if error_cls is MaskError
            else "backend='local' (the offline embedder)")


def _setting_name(error_cls: type[Exception]) -> str:
    return "mask_model_id (WORKBOOK_MASK_MODEL_ID)" if error_cls is MaskError \
        else "embed_model_id (WORKBOOK_EMBED_MODEL_ID)"


def translate_error(exc: BaseException, *, model_id: str, region: str,
                    error_cls: type[Exception] = MaskError, image_id: str | None = None,
                    concurrency: int | None = None, max_retries: int | None = None) -> Exception:
    """Turn a botocore exception into `error_cls(reason, message)` (MaskError or EmbedError).

    Reasons: content_filter, throttled, access_denied, model_unavailable, region,
    no_credentials, bad_credentials, network, service_error, bad_request, aws_error.
    """
    subject = f"image {image_id!r}" if image_id else "the request"
    who = f"{model_id} in {region}"
    offline = _offline_hint(error_cls)

    def err(reason: str, message: str) -> Exception:
        return error_cls(reason, scrub(message))

    special = classify(exc, who=who, offline=offline)  # SSO, expired/unknown keys, 5xx, proxies
    if special is not None:
        return err(*special)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return err("no_credentials",
                   f"No usable AWS credentials were found for {who}. Run `aws configure` (or "
                   f"`aws sso login --profile NAME`) and set AWS_PROFILE or the aws_profile setting "
                   f"(WORKBOOK_AWS_PROFILE); or use {offline}.")
    if isinstance(exc, ProfileNotFound):
        return err("no_credentials",
                   f"The AWS profile named in aws_profile / AWS_PROFILE does not exist ({exc}). "
                   f"Create it with `aws configure --profile NAME`, fix the name, or use {offline}.")
    if isinstance(exc, NoRegionError):
        return err("region", f"No AWS region is set: set aws_region (WORKBOOK_AWS_REGION), e.g. "
                             f"us-east-1; for {model_id} {_regions_hint(model_id)}.")
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError,
                        ConnectionClosedError)):
        return err("network",
                   f"Could not reach Bedrock for {who} ({exc}). Check the network or proxy and the "
                   f"region name; without internet access use {offline}. Re-running resumes: "
                   f"finished items are cached.")
    if not isinstance(exc, ClientError):
        return err("aws_error", f"{subject} failed on {who}: {type(exc).__name__}: {exc}.")

    code = exc.response.get("Error", {}).get("Code", "")
    aws_msg = exc.response.get("Error", {}).get("Message", "") or str(exc)
    low = aws_msg.lower()
    said = f"Bedrock said {code}: {aws_msg!r}"

    if _is_content_filter(low):
        return err("content_filter",
                   f"{subject} was blocked by our content filters on {who} ({said}). Fashion photos "
                   f"(bare shoulders, swimwear) trip it; the batch skipped this image — use "
                   f"{offline} for it, or leave it out.")
    if code in _THROTTLE_CODES:
        tries = f"even after {max_retries} retries" if max_retries is not None else "after retries"
        conc = f" (now {concurrency})" if concurrency is not None else ""
        return err("throttled",
                   f"{subject} was throttled by Bedrock on {who} {tries} ({said}). Lower the "
                   f"concurrency setting{conc} (WORKBOOK_CONCURRENCY), or request a quota increase "
                   f"for {model_id} in the Service Quotas console; re-run later: finished items "
                   f"are cached.")
    if code == "AccessDeniedException":
        return err("access_denied",
                   f"Access denied to {who} ({said}). Enable model access in the Bedrock console "
                   f"(Model access) for {model_id} in {region}, and allow bedrock:InvokeModel in "
                   f"your IAM policy; or use {offline}.")
    if code in _BAD_CREDENTIAL_CODES:
        return err("bad_credentials",
                   f"AWS rejected the credentials for {who} ({code}). Refresh them (`aws sso login`, "
                   f"or `aws configure` with a valid key), check AWS_PROFILE / aws_profile, or use "
                   f"{offline}.")
    if any(w in low for w in _GONE_WORDS):
        succ = SUCCESSORS.get(model_id)
        alt = f" (for example {succ})" if succ else ""
        return err("model_unavailable",
                   f"{model_id} cannot be used in {region}: {said}. Legacy models are closed to "
                   f"accounts that have not used them recently and stop working at end of life. "
                   f"Pick another model id{alt} in the setting {_setting_name(error_cls)}, "
                   f"or use {offline}.")
    if code == "ResourceNotFoundException" or any(w in low for w in _MISSING_WORDS):
        if model_id in MODEL_REGIONS and region not in MODEL_REGIONS[model_id]:
            return err("region",
                       f"{model_id} is not served in {region} ({said}); {_regions_hint(model_id)}. "
                       f"Set aws_region (WORKBOOK_AWS_REGION) to one of them, or use {offline}.")
        return err("model_unavailable",
                   f"{model_id} is unknown or retired in {region} ({said}). Pick another model id "
                   f"in the setting {_setting_name(error_cls)} (see the setup notebook's access "
                   f"check), or use {offline}.")
    if code in _SERVICE_CODES:
        return err("service_error",
                   f"Bedrock failed on {subject} with {who} ({said}). It is usually temporary: "
                   f"re-run later (finished items are cached), or use {offline}.")
    if code == "ValidationException":
        return err("bad_request",
                   f"Bedrock rejected {subject} for {who} ({said}). If it names an image limit, "
                   f"the image could not be shrunk to fit; leave this image out or use {offline}.")
    return err("aws_error", f"{subject} failed on {who} ({said}).")


class BedrockModel:
    """Shared plumbing: a lazily built, shared (thread-safe) client and error translation."""

    parallel = "threads"
    _error_cls: type[Exception] = MaskError

    def __init__(self, settings: Settings, model_id: str, client: Any = None):
        self.model_id = model_id
        self.region = settings.aws_region
        self._settings = settings
        self._client = client
        self._lock = threading.Lock()

    @property
    def label(self) -> str:
        """A short human name for cost lines ("Titan Image Generator v2 mask")."""
        return MODEL_LABELS.get(self.model_id, self.model_id)

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                try:
                    self._client = make_client(self._settings)
                except BotoCoreError as exc:
                    raise self._translate(exc) from None
            return self._client

    def _translate(self, exc: BaseException, image_id: str | None = None) -> Exception:
        return translate_error(exc, model_id=self.model_id, region=self.region,
                               error_cls=self._error_cls, image_id=image_id,
                               concurrency=self._settings.concurrency,
                               max_retries=self._settings.max_retries)

    def invoke(self, body: dict, *, image_id: str | None = None) -> dict:
        """One InvokeModel call with a JSON body; returns the parsed JSON response."""
        client = self._get_client()
        try:
            response = client.invoke_model(modelId=self.model_id, body=json.dumps(body),
                                           contentType="application/json",
                                           accept="application/json")
            raw = response["body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, image_id) from None
        record_usage(self._settings, self.model_id, getattr(self, "price_per_call", 0.0))
        try:
            data = json.loads(raw)
        except ValueError:
            raise self._error_cls("bad_response",
                                  f"{self._subject(image_id)}: {self.model_id} answered with "
                                  f"{len(raw)} bytes that are not JSON; re-run later or use "
                                  f"{_offline_hint(self._error_cls)}.") from None
        if not isinstance(data, dict):
            raise self._error_cls("bad_response", f"{self._subject(image_id)}: {self.model_id} "
                                  f"answered with a JSON {type(data).__name__}, not an object.")
        return data

    @staticmethod
    def _subject(image_id: str | None) -> str:
        return f"image {image_id!r}" if image_id else "the request"

    def __repr__(self) -> str:  # never shows the client or anything credential-related
        return f"{type(self).__name__}(model_id={self.model_id!r}, region={self.region!r})"

    def __getstate__(self) -> dict:  # a client (and its credentials) is never pickled
        state = self.__dict__.copy()
        state["_client"] = None
        state.pop("_lock", None)
        if "_memo" in state:
            state["_memo"] = OrderedDict()
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
