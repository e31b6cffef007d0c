"""AWS failures that `translate_error`'s general rules lumped together or missed.

Why apart: an expired SSO login, an expired session token, a key AWS does not know, a proxy
that refuses, a read timeout and an HTTP 5xx each need a different action from the user, and
a single "AWS rejected the credentials" or "failed" did not say which. `classify` is asked
first; None means "use the general rules".
"""
from __future__ import annotations

from botocore.exceptions import (ClientError, ConnectionError, HTTPClientError, ReadTimeoutError,
                                 SSOError, SSOTokenLoadError, TokenRetrievalError,
                                 UnauthorizedSSOTokenError)

_EXPIRED_CODES = {"ExpiredTokenException", "ExpiredToken", "RequestExpired"}
_UNKNOWN_KEY_CODES = {"UnrecognizedClientException", "InvalidClientTokenId"}
_SSO_ERRORS = (TokenRetrievalError, SSOTokenLoadError, UnauthorizedSSOTokenError, SSOError)


def classify(exc: BaseException, *, who: str, offline: str) -> tuple[str, str] | None:
    """(reason, message) for the failures named in the module docstring, else None."""
    login = "`aws sso login --profile NAME` (the profile in AWS_PROFILE / aws_profile)"
    if isinstance(exc, _SSO_ERRORS):
        return ("bad_credentials",
                f"The AWS SSO login for {who} has expired or is missing ({type(exc).__name__}). Run "
                f"{login}, then run this again; or use {offline}.")
    if isinstance(exc, ReadTimeoutError):
        return ("network",
                f"Bedrock accepted the connection for {who} but sent no answer in time ({exc}). The "
                f"model may be busy: re-run later (finished items are cached), lower concurrency "
                f"(WORKBOOK_CONCURRENCY), or use {offline}.")
    if isinstance(exc, (ConnectionError, HTTPClientError)):  # proxy, TLS, DNS, closed sockets
        return ("network",
                f"Could not reach Bedrock for {who} ({type(exc).__name__}: {exc}). Check the network, "
                f"the proxy (HTTPS_PROXY) and the region name; without internet access use {offline}. "
                f"Re-running resumes: finished items are cached.")
    if not isinstance(exc, ClientError):
        return None
    code = exc.response.get("Error", {}).get("Code", "")
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if code in _EXPIRED_CODES:
        return ("bad_credentials",
                f"The AWS credentials for {who} have expired ({code}). Temporary credentials last "
                f"hours: get new ones ({login}, or a new session token), then run this again; "
                f"or use {offline}.")
    if code in _UNKNOWN_KEY_CODES:
        return ("bad_credentials",
                f"AWS does not recognise the access key used for {who} ({code}): it is mistyped, "
                f"deleted, or meant for another partition. Check `aws sts get-caller-identity`, fix "
                f"the key with `aws configure` (or AWS_PROFILE / aws_profile); or use {offline}.")
    if status >= 500 and code not in ("ThrottlingException", "ServiceUnavailableException",
                                      "ModelTimeoutException", "InternalServerException"):
        return ("service_error",
                f"Bedrock failed on its side for {who} (HTTP {status} {code or 'error'}). It is "
                f"usually temporary: re-run later (finished items are cached), or use {offline}.")
    return None
