"""Amazon Bedrock: the boto3 client, request bodies, response decoding, error translation,
the usage ledger, the access and lifecycle checks, the Bedrock embedder, Converse box requests
(`converse`), batch embedding jobs (`batch`) and prices with their sources (`prices`).

Why a package: everything that knows Bedrock's wire format lives here, so the masking and
embedding steps only see the `Masker` / `Embedder` protocols. The Titan and box maskers
themselves are helpers.maskers.titan and helpers.maskers.boxes (one module per masker). No
machine that builds this project reaches AWS: tests drive a real botocore client through
`botocore.stub.Stubber` with exact bodies (and batch jobs through moto's S3 on loopback).
"""
from helpers.bedrock.access import ACCESS_COLUMNS, check_access
from helpers.bedrock.client import (EMBED_DIMS_BY_MODEL, EMBED_MAX_SIDE, MASK_MAX_SIDE, MAX_PROMPT_CHARS,
                                    MAX_REQUEST_IMAGE_BYTES, MODEL_LABELS, NOVA_CANVAS, NOVA_EMBED,
                                    SUCCESSORS, TITAN_EMBED, TITAN_MASK_V1, TITAN_MASK_V2, BedrockModel,
                                    client_config, make_client, make_session, scrub, translate_error)
from helpers.bedrock.embedder import BedrockEmbedder
from helpers.bedrock.lifecycle import LIFECYCLE_COLUMNS, lifecycle_table, warn_if_retired
from helpers.bedrock.requests import (PreparedImage, decode_mask, embed_request, mask_request,
                                      nova_embed_request, prepare_image, preview_body)
from helpers.bedrock.usage import USAGE_FILE, record_usage, usage_summary

__all__ = ["ACCESS_COLUMNS", "LIFECYCLE_COLUMNS", "lifecycle_table", "warn_if_retired", "EMBED_DIMS_BY_MODEL", "EMBED_MAX_SIDE", "MASK_MAX_SIDE", "MAX_PROMPT_CHARS",
           "MAX_REQUEST_IMAGE_BYTES", "MODEL_LABELS", "NOVA_CANVAS", "NOVA_EMBED", "SUCCESSORS", "TITAN_EMBED",
           "TITAN_MASK_V1", "TITAN_MASK_V2", "BedrockEmbedder", "BedrockModel", "PreparedImage", "USAGE_FILE",
           "check_access", "client_config", "decode_mask", "embed_request", "make_client", "make_session",
           "mask_request", "nova_embed_request", "prepare_image", "preview_body", "record_usage", "scrub",
           "translate_error", "usage_summary"]
