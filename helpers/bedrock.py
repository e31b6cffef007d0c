"""Amazon Bedrock: the boto3 client, request bodies, response decoding and error translation.

Why one module: everything that knows Bedrock's wire format lives here, so the masking and
embedding steps only see the `Masker` / `Embedder` protocols, and every Bedrock failure
reaches the user as a `MaskError` / `EmbedError` whose `reason` fills a failure table and whose
message says what happened *and what to do*. Nothing here prints or returns credentials:
they stay inside boto3's credential chain (profile, environment, instance role), and any AWS
message quoted in an error is scrubbed of key-like strings first.

Facts used (model ids, body shapes, limits, lifecycle) are in ../shared/notes/bedrock.md.
No machine that builds this project reaches AWS: tests drive a real botocore client through
`botocore.stub.Stubber` with exact request bodies.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import boto3
import numpy as np
import pandas as pd
from botocore.config import Config
from botocore.exceptions import (BotoCoreError, ClientError, ConnectionClosedError,
                                 ConnectTimeoutError, EndpointConnectionError,
                                 NoCredentialsError, NoRegionError, PartialCredentialsError,
                                 ProfileNotFound, ReadTimeoutError)
from botocore.response import StreamingBody
from PIL import Image

from helpers.embedding import EmbedError
from helpers.masking import MaskError
from helpers.settings import EMBED_MODEL_IDS, MASK_MODEL_IDS, Settings, SettingsError

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

_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA)[A-Z0-9]{12,}\b")
_SECRET_LIKE = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])")
_SECRET_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


def scrub(text: str) -> str:
    """Remove anything that looks like an AWS key from text we show (AWS messages can echo
    a key id, e.g. SignatureDoesNotMatch); also the exact values of the AWS_* key variables."""
    for name in _SECRET_ENV:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "<redacted>")
    text = _KEY_ID.sub("<redacted key id>", text)
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


# --- images ------------------------------------------------------------------------------

@dataclass(frozen=True)
class PreparedImage:
    """An image ready for a request body: base64 text, its format and the size sent."""

    b64: str
    format: str                      # "png" or "jpeg"
    size: tuple[int, int]            # (width, height) sent
    original_size: tuple[int, int]   # (width, height) before resizing


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _encode(image: Image.Image, fmt: str) -> str:
    buf = io.BytesIO()
    if fmt == "png":
        image.save(buf, format="PNG")
    else:
        image.save(buf, format="JPEG", quality=90)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def prepare_image(image: Image.Image, *, max_side: int,
                  max_bytes: int = MAX_REQUEST_IMAGE_BYTES) -> PreparedImage:
    """Fit an image to a model's limits: RGB, longer side <= max_side, base64 <= max_bytes.

    PNG first (lossless, so masks line up); JPEG q90 if PNG is too big; then shrink by 3/4
    until it fits. Small images are sent unchanged.
    """
    original = image.size
    rgb = _to_rgb(image)
    scale = min(1.0, max_side / max(rgb.size))
    while True:
        size = (max(1, round(original[0] * scale)), max(1, round(original[1] * scale)))
        sized = rgb if size == rgb.size else rgb.resize(size, Image.Resampling.LANCZOS)
        for fmt in ("png", "jpeg"):
            b64 = _encode(sized, fmt)
            if len(b64) <= max_bytes:
                return PreparedImage(b64, fmt, sized.size, original)
        if min(size) <= 16:
            raise ValueError(f"cannot fit a {original[0]}x{original[1]} image into {max_bytes} bytes")
        scale *= 0.75


def decode_mask(mask_b64: str, size: tuple[int, int]) -> np.ndarray:
    """Titan's returned mask (black = inside = garment) as bool HxW at `size` (width, height)."""
    with Image.open(io.BytesIO(base64.b64decode(mask_b64))) as im:
        grey = _to_rgb(im).convert("L")
    binary = grey.point(lambda v: 255 if v < 128 else 0)  # black -> True (garment)
    if binary.size != tuple(size):
        binary = binary.resize(tuple(size), Image.Resampling.NEAREST)
    return np.asarray(binary) > 127


def preview_body(body: dict) -> str:
    """The request body as pretty JSON with base64 images shortened, for notebooks and logs."""
    def short(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: short(v) for k, v in value.items()}
        if isinstance(value, list):
            return [short(v) for v in value]
        if isinstance(value, str) and len(value) > 200:
            return f"<base64, {len(value):,} characters>"
        return value
    return json.dumps(short(body), indent=2)


# --- request bodies ----------------------------------------------------------------------

def mask_request(image_png_b64: str, prompt: str, *, text: str | None = None,
                 negative_text: str | None = None, cfg_scale: float = 8.0,
                 quality: str = "standard") -> dict:
    """The INPAINTING body that asks Titan/Nova Canvas to find `prompt` and return its mask.

    `text` (what to paint into the masked area) defaults to the prompt itself: we keep only
    the mask, so the repainted image is discarded. `negativeText` is sent only when given.
    """
    for name, value in (("prompt", prompt), ("text", text), ("negative_text", negative_text)):
        if value is not None and (not value.strip() or len(value) > MAX_PROMPT_CHARS):
            raise ValueError(f"{name} must be 1-{MAX_PROMPT_CHARS} characters, got {len(value)}")
    params: dict[str, Any] = {"image": image_png_b64, "maskPrompt": prompt,
                              "text": text if text is not None else prompt}
    if negative_text is not None:
        params["negativeText"] = negative_text
    params["returnMask"] = True
    return {"taskType": "INPAINTING",
            "inPaintingParams": params,
            "imageGenerationConfig": {"numberOfImages": 1, "quality": quality,
                                      "cfgScale": float(cfg_scale)}}


def embed_request(*, image_b64: str | None = None, text: str | None = None,
                  dim: int = 1024) -> dict:
    """Titan Multimodal Embeddings G1 body; with both inputs Titan combines them."""
    if image_b64 is None and text is None:
        raise ValueError("embed_request needs image_b64, text or both")
    if dim not in EMBED_DIMS_BY_MODEL[TITAN_EMBED]:
        raise ValueError(f"Titan Multimodal Embeddings offers {EMBED_DIMS_BY_MODEL[TITAN_EMBED]}, not {dim}")
    body: dict[str, Any] = {}
    if image_b64 is not None:
        body["inputImage"] = image_b64
    if text is not None:
        body["inputText"] = text
    body["embeddingConfig"] = {"outputEmbeddingLength": dim}
    return body


NOVA_IMAGE_FORMATS = ("png", "jpeg", "gif", "webp")
NOVA_PURPOSES = ("GENERIC_INDEX", "GENERIC_RETRIEVAL", "IMAGE_RETRIEVAL")


def nova_embed_request(*, image_b64: str | None = None, image_format: str = "png",
                       text: str | None = None, dim: int = 1024,
                       purpose: str = "GENERIC_INDEX") -> dict:
    """Amazon Nova Multimodal Embeddings body (SINGLE_EMBEDDING, schema nova-multimodal-embed-v1).

    One modality per call (image or text; Nova has no fused vector). `purpose`: GENERIC_INDEX for
    what is stored (catalogue images), GENERIC_RETRIEVAL for queries. Shape from the Nova 2 user
    guide's embeddings schema (bedrock.md, 2026-11); no call was made by this project.
    """
    if (image_b64 is None) == (text is None):
        raise ValueError("nova_embed_request needs exactly one of image_b64 or text")
    if dim not in EMBED_DIMS_BY_MODEL[NOVA_EMBED]:
        raise ValueError(f"Nova Multimodal Embeddings offers {EMBED_DIMS_BY_MODEL[NOVA_EMBED]}, not {dim}")
    if purpose not in NOVA_PURPOSES:
        raise ValueError(f"embeddingPurpose must be one of {NOVA_PURPOSES}, not {purpose!r}")
    params: dict[str, Any] = {"embeddingPurpose": purpose, "embeddingDimension": dim}
    if image_b64 is not None:
        if image_format not in NOVA_IMAGE_FORMATS:
            raise ValueError(f"Nova takes {NOVA_IMAGE_FORMATS} images, not {image_format!r}")
        params["image"] = {"format": image_format, "source": {"bytes": image_b64}}
    else:
        if not text or not text.strip():
            raise ValueError("a text query must not be empty")
        params["text"] = {"truncationMode": "END", "value": text}
    return {"schemaVersion": "nova-multimodal-embed-v1", "taskType": "SINGLE_EMBEDDING",
            "singleEmbeddingParams": params}


# --- invoking ----------------------------------------------------------------------------

USAGE_FILE = "bedrock_usage.jsonl"
_usage_lock = threading.Lock()


def record_usage(settings: Settings, model_id: str, price: float) -> None:
    """Append one answered (billed) call to the usage ledger in the cache folder, so the
    clean-up step can say how many calls were made and what they cost. No request content,
    no credentials: model id, price and time only."""
    path = Path(settings.cache_dir) / USAGE_FILE
    line = json.dumps({"model_id": model_id, "price_usd": price, "time": time.time()}) + "\n"
    with _usage_lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line)


def usage_summary(settings: Settings) -> pd.DataFrame:
    """Calls answered by Bedrock since the cache was last cleared, per model, with their cost."""
    path = Path(settings.cache_dir) / USAGE_FILE
    rows = [json.loads(l) for l in path.read_text().splitlines() if l.strip()] if path.is_file() else []
    if not rows:
        return pd.DataFrame({"model_id": [], "calls": [], "dollars": []})
    frame = pd.DataFrame(rows)
    return (frame.groupby("model_id").agg(calls=("price_usd", "size"), dollars=("price_usd", "sum"))
            .reset_index())


class _BedrockModel:
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


class BedrockMasker(_BedrockModel):
    """The `Masker` protocol on Titan Image Generator (or Nova Canvas) INPAINTING + maskPrompt.

    One call per image; run batches through `helpers.cost.run_parallel` (threads) with the
    cache in front, so a re-run makes zero calls.
    """

    _error_cls = MaskError

    def __init__(self, settings: Settings, *, client: Any = None):
        if settings.mask_model_id not in MASK_MODEL_IDS:
            raise SettingsError(f"mask_model_id={settings.mask_model_id!r} is not a supported mask "
                                f"model; choose one of {', '.join(MASK_MODEL_IDS)}")
        super().__init__(settings, settings.mask_model_id, client)
        self.price_per_call = settings.mask_price_usd

    def request_body(self, image: Image.Image, prompt: str) -> dict:
        """The exact body `mask` sends for this image (resized to the model's limits)."""
        return mask_request(prepare_image(image, max_side=MASK_MAX_SIDE).b64, prompt)

    def mask(self, image: Image.Image, prompt: str, *, image_id: str | None = None) -> np.ndarray:
        """bool HxW at the image's original size, True = garment."""
        data = self.invoke(self.request_body(image, prompt), image_id=image_id)
        subject = self._subject(image_id)
        if data.get("error"):
            raise MaskError("content_filter",
                            scrub(f"{subject} was flagged by Bedrock's content moderation on "
                                  f"{self.model_id}: {data['error']!r}. The batch skipped it; use "
                                  f"masker='local' for it, or leave it out."))
        mask_b64 = data.get("maskImage")
        if not isinstance(mask_b64, str) or not mask_b64:
            keys = ", ".join(sorted(data)) or "none"
            raise MaskError("bad_response",
                            f"{subject}: the response from {self.model_id} has no 'maskImage' "
                            f"(keys present: {keys}). This model may not return masks "
                            f"(returnMask); use {TITAN_MASK_V2} or masker='local'.")
        try:
            mask = decode_mask(mask_b64, image.size)
        except (ValueError, OSError) as exc:
            raise MaskError("bad_response", f"{subject}: 'maskImage' from {self.model_id} is not a "
                                            f"readable image ({exc}).") from None
        if not mask.any():
            raise MaskError("no_garment",
                            f"{subject}: {self.model_id} returned an empty mask — the prompt "
                            f"{prompt!r} matched nothing. Check garment_prompt, or use the full "
                            f"image for this one.")
        return mask


class BedrockEmbedder(_BedrockModel):
    """The `Embedder` protocol on Titan Multimodal Embeddings G1 (or, unverified, Nova).

    `model_id` + `dim` name the vectors (collections are named from both). Vectors come
    back float32 and L2-normalised. Titan takes one image per call: `embed` runs a bounded
    thread pool (settings.concurrency) and raises the first EmbedError. The vectors of the
    last few hundred requests are remembered (keyed on the exact request body), so when a
    caller re-embeds a failed batch image by image to find the culprit, the images that
    succeeded are not paid for twice. `batch_size` tells batch callers a good batch length.
    """

    _error_cls = EmbedError
    _MEMO_SIZE = 512

    def __init__(self, settings: Settings, *, client: Any = None, purpose: str = "GENERIC_INDEX"):
        model_id = settings.embed_model_id
        if model_id not in EMBED_MODEL_IDS or model_id not in EMBED_DIMS_BY_MODEL:
            raise SettingsError(f"embed_model_id={model_id!r} is not a supported embedding model; "
                                f"choose one of {', '.join(EMBED_DIMS_BY_MODEL)}")
        if settings.embed_dim not in EMBED_DIMS_BY_MODEL[model_id]:
            raise SettingsError(f"embed_dim={settings.embed_dim} is not offered by {model_id}; "
                                f"choose one of {EMBED_DIMS_BY_MODEL[model_id]}")
        super().__init__(settings, model_id, client)
        self.dim = settings.embed_dim
        self.price_per_call = settings.embed_price_usd
        self.purpose = purpose
        self.batch_size = 4 * settings.concurrency
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()

    def request_body(self, image: Image.Image) -> dict:
        """The exact body sent for one image (downscaled to the model's limits)."""
        prepared = prepare_image(image, max_side=EMBED_MAX_SIDE)
        if self.model_id == NOVA_EMBED:
            return nova_embed_request(image_b64=prepared.b64, image_format=prepared.format,
                                      dim=self.dim, purpose=self.purpose)
        return embed_request(image_b64=prepared.b64, dim=self.dim)

    def text_request_body(self, text: str) -> dict:
        if not text.strip():
            raise ValueError("a text query must not be empty")
        if self.model_id == NOVA_EMBED:
            return nova_embed_request(text=text, dim=self.dim, purpose="GENERIC_RETRIEVAL")
        return embed_request(text=text, dim=self.dim)

    def _vector(self, data: dict, image_id: str | None) -> np.ndarray:
        subject = self._subject(image_id)
        if data.get("message"):
            low = str(data["message"]).lower()
            reason = "content_filter" if _is_content_filter(low) else "bad_response"
            raise EmbedError(reason, scrub(f"{subject}: {self.model_id} answered with message "
                                           f"{data['message']!r}; leave this item out or use "
                                           f"backend='local'."))
        if self.model_id == NOVA_EMBED:
            items = data.get("embeddings")
            vec = items[0].get("embedding") if isinstance(items, list) and items and \
                isinstance(items[0], dict) else None
            key = "embeddings[0].embedding"
        else:
            vec, key = data.get("embedding"), "embedding"
        if not isinstance(vec, list):
            raise EmbedError("bad_response", f"{subject}: the response from {self.model_id} has no "
                                             f"{key!r} (keys present: {', '.join(sorted(data)) or 'none'}).")
        arr = np.asarray(vec, dtype=np.float64)
        if arr.shape != (self.dim,):
            raise EmbedError("bad_response", f"{subject}: {self.model_id} returned {arr.size} numbers, "
                                             f"expected {self.dim} (embed_dim).")
        norm = float(np.linalg.norm(arr))
        if not np.isfinite(norm) or norm == 0.0:
            raise EmbedError("bad_response", f"{subject}: {self.model_id} returned a zero or "
                                             f"non-finite vector.")
        return (arr / norm).astype(np.float32)

    def _embed_body(self, body: dict, image_id: str | None) -> np.ndarray:
        key = hashlib.sha256(json.dumps(body).encode()).hexdigest()
        with self._lock:
            if key in self._memo:
                self._memo.move_to_end(key)
                return self._memo[key].copy()
        vec = self._vector(self.invoke(body, image_id=image_id), image_id)
        with self._lock:
            self._memo[key] = vec
            while len(self._memo) > self._MEMO_SIZE:
                self._memo.popitem(last=False)
        return vec.copy()

    def embed_one(self, image: Image.Image, *, image_id: str | None = None) -> np.ndarray:
        """One image -> float32 (dim,), L2-normalised."""
        return self._embed_body(self.request_body(image), image_id)

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """float32 (n, dim), L2-normalised; calls run concurrently (settings.concurrency)."""
        return self._many(self.embed_one, list(images))

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """Text queries ("red dress with white dots") in the same space as the images."""
        if isinstance(texts, str):
            texts = [texts]

        def one(text: str) -> np.ndarray:
            return self._embed_body(self.text_request_body(text), None)
        return self._many(one, list(texts))

    def _many(self, fn, items: list) -> np.ndarray:
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        workers = min(self._settings.concurrency, len(items))
        if workers <= 1:
            rows = [fn(x) for x in items]
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                rows = list(pool.map(fn, items))
        return np.stack(rows).astype(np.float32, copy=False)


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
        from helpers.bedrock_lifecycle import foundation_id  # profiles: their foundation model

        details = client.get_foundation_model(modelIdentifier=foundation_id(model_id))["modelDetails"]
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
    status = str(life.get("status") or "unknown")
    eol = life.get("endOfLifeTime")
    if isinstance(eol, datetime) and eol.tzinfo is None:
        eol = eol.replace(tzinfo=timezone.utc)
    if isinstance(eol, datetime) and eol <= now:
        status = "EOL"
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


# --- benchmark ---------------------------------------------------------------------------

class _SleepyClient:
    """A stand-in bedrock-runtime client for the benchmark only: each call sleeps like a
    network round trip and returns a valid Titan mask response (Stubber is not thread-safe)."""

    def __init__(self, delay_s: float, mask_png: bytes):
        self.delay_s = delay_s
        self.body = json.dumps({"images": [base64.b64encode(mask_png).decode()],
                                "maskImage": base64.b64encode(mask_png).decode(),
                                "error": None}).encode()

    def invoke_model(self, **_kwargs: Any) -> dict:
        time.sleep(self.delay_s)
        return {"body": StreamingBody(io.BytesIO(self.body), len(self.body)),
                "contentType": "application/json"}


def bench_stub_concurrency(n_images: int = 40, delay_s: float = 0.2,
                           concurrency: int = 4) -> dict:
    """Serial vs concurrent Bedrock masking against a client that sleeps `delay_s` per call.

    Shows that the bounded thread pool overlaps network waits: goal c4 <= 1/3 of serial.
    """
    from helpers import cost

    mask = Image.new("L", (64, 96), 255)
    mask.paste(0, (16, 24, 48, 80))
    buf = io.BytesIO()
    mask.save(buf, format="PNG")
    images = {f"img{i:03d}": Image.new("RGB", (64, 96), (i * 5 % 255, 80, 160))
              for i in range(n_images)}

    def run(conc: int) -> float:
        start = time.perf_counter()
        results, failures = cost.run_parallel(lambda im: masker.mask(im, "dress"), images, conc,
                                              f"stub c{conc}", progress=False)
        if len(results) != n_images or len(failures):
            raise RuntimeError(f"benchmark run failed: {failures}")
        return time.perf_counter() - start

    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-bedrock-") as scratch:  # fake calls are no real usage
        settings = Settings(backend="bedrock", concurrency=concurrency, cache_dir=Path(scratch))
        masker = BedrockMasker(settings, client=_SleepyClient(delay_s, buf.getvalue()))
        serial = run(1)
        parallel = run(concurrency)
    return {"bedrock_stub_serial_s": round(serial, 3),
            f"bedrock_stub_c{concurrency}_s": round(parallel, 3),
            "bedrock_stub_speedup": round(serial / parallel, 2)}
