"""Small guards of issue #17: CLI counts, ONNX Runtime telemetry, one clear message per AWS
credential or network failure, and `make lab` in containers."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from botocore.exceptions import (ClientError, ProxyConnectionError, ReadTimeoutError, SSOTokenLoadError,
                                 TokenRetrievalError, UnauthorizedSSOTokenError)

from helpers import bedrock, report
from helpers.errors import MaskError
from helpers.settings import PROJECT_ROOT

MODEL = "amazon.titan-image-generator-v2:0"


@pytest.mark.parametrize("value", ["0", "-3"])
def test_limit_below_one_is_refused_by_the_cli(value, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        report.main(["--limit", value, "--catalog", str(tmp_path / "none"), "--no-index", "--quiet"])
    assert info.value.code == 2
    assert "--limit: must be >= 1" in capsys.readouterr().err


def test_onnxruntime_telemetry_is_off_wherever_helpers_is_imported():
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    out = subprocess.run([sys.executable, "-c", "import helpers.embedding, os; "
                          "print(os.environ.get('ORT_DISABLE_TELEMETRY'))"],
                         env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "1"


def client_error(code: str, status: int, message: str = "nope") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "InvokeModel")


@pytest.mark.parametrize("exc, reason, says", [
    (TokenRetrievalError(provider="sso", error_msg="expired"), "bad_credentials", "aws sso login"),
    (SSOTokenLoadError(error_msg="no token"), "bad_credentials", "aws sso login"),
    (UnauthorizedSSOTokenError(), "bad_credentials", "aws sso login"),
    (client_error("ExpiredTokenException", 403, "The security token included in the request is expired"),
     "bad_credentials", "have expired"),
    (client_error("UnrecognizedClientException", 403, "The security token included in the request is invalid"),
     "bad_credentials", "does not recognise the access key"),
    (client_error("BadGateway", 502), "service_error", "HTTP 502"),
    (client_error("", 500), "service_error", "HTTP 500"),
    (ProxyConnectionError(proxy_url="http://proxy:3128", error="refused"), "network", "HTTPS_PROXY"),
    (ReadTimeoutError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com"), "network",
     "sent no answer in time"),
])
def test_each_credential_and_network_failure_gets_its_own_message(exc, reason, says):
    err = bedrock.translate_error(exc, model_id=MODEL, region="us-east-1", error_cls=MaskError)
    assert err.reason == reason and says in str(err), str(err)
    assert MODEL in str(err) and "masker='local'" in str(err)  # names the model and the way out


def test_make_lab_takes_a_port_and_runs_as_root(tmp_path):
    for name in ("Makefile", "requirements.lock", "pyproject.toml"):
        shutil.copy(PROJECT_ROOT / name, tmp_path / name)
    out = subprocess.run(["make", "-n", "lab", "PORT=8890"], cwd=tmp_path, capture_output=True,
                         text=True).stdout
    line = next(l for l in out.splitlines() if "--ServerApp.root_dir" in l or "ServerApp.port" in l)
    assert "--ServerApp.port=8890" in out
    assert ("--allow-root" in out) == (os.geteuid() == 0), line
    default = subprocess.run(["make", "-n", "lab"], cwd=tmp_path, capture_output=True, text=True).stdout
    assert "--ServerApp.port=8888" in default
