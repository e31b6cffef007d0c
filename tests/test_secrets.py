"""Credentials in executed notebooks and in error messages are found wherever they come from,
and a copy is called "redacted" only when nothing remains in it. Real nbformat files, a real
temporary AWS credentials file, botocore's own credential chain; the network is blocked."""
import socket
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from helpers import bedrock, secrets
from helpers.workbook import notebooks as runner

KEY_ID = "ASIA" + "PLANTEDFAKE7Q2XZ"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYPLANTED7Q2"  # 40 characters, like a real secret key
TOKEN = "IQoJb3JpZ2luX2VjEPLANTED/session+token0123456789abcdefABCDEF=="
PROFILE_SECRET = "pRoFiLe-secret-value-0123"  # no known shape: only its value can find it


def executed(tmp_path: Path, *outputs) -> Path:
    """An executed notebook copy on disk whose one code cell has `outputs`."""
    cell = new_code_cell("x = 1", outputs=list(outputs), execution_count=1)
    path = tmp_path / "01_out.ipynb"
    nbformat.write(new_notebook(cells=[cell]), path)
    return path


@pytest.fixture()
def aws_files(tmp_path, monkeypatch):
    """Empty AWS_* environment; credentials and config files under tmp_path, network blocked."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                 "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "WORKBOOK_AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    creds, config = tmp_path / "aws_credentials", tmp_path / "aws_config"
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    config.write_text("[profile sso-user]\nsso_start_url = https://example.awsapps.com/start\n"
                      "sso_region = us-east-1\nsso_account_id = 123456789012\nsso_role_name = R\n")

    def no_network(*args, **kwargs):
        raise AssertionError("the secret scanner must not use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    return creds


def test_sts_style_dict_is_caught_and_its_secret_really_removed(tmp_path, aws_files):
    out = executed(tmp_path, new_output("execute_result", data={
        "text/plain": f"{{'AccessKeyId': '{KEY_ID}', 'SecretAccessKey': '{SECRET}', 'SessionToken': '{TOKEN}'}}"},
        execution_count=1))
    with pytest.raises(runner.SecretLeak, match="the copy was redacted"):
        runner.scan_for_secrets(out)
    text = out.read_text()
    assert KEY_ID not in text and SECRET not in text and TOKEN not in text and "[REDACTED]" in text


def test_unlabelled_secret_next_to_a_key_id_is_caught(tmp_path, aws_files):
    out = executed(tmp_path, new_output("stream", name="stdout", text=f"{KEY_ID} {SECRET}\n"))
    with pytest.raises(runner.SecretLeak, match="unlabelled 40-character secret"):
        runner.scan_for_secrets(out)
    assert SECRET not in out.read_text()
    # a commit hash (lower-case hex) beside a key id is not taken for a secret
    found = secrets.find_in_text(f"{KEY_ID} 4e8984f0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6", {})
    assert found == ["an AWS access key id"]


def test_quoted_assignment_is_caught_although_the_json_escapes_the_quote(tmp_path, aws_files):
    out = executed(tmp_path, new_output("stream", name="stdout", text=f'aws_secret_access_key="{SECRET}"\n'))
    assert '\\"' in out.read_text()  # what the old scan over the file text tripped on
    with pytest.raises(runner.SecretLeak, match="aws_secret_access_key"):
        runner.scan_for_secrets(out)
    assert SECRET not in out.read_text()


def test_profile_secret_is_caught_in_every_output_type(tmp_path, aws_files, monkeypatch):
    # the README's setup: credentials in a profile, nothing in the environment
    aws_files.write_text(f"[work]\naws_access_key_id = AKIA{'W' * 16}\naws_secret_access_key = {PROFILE_SECRET}\n")
    monkeypatch.setenv("AWS_PROFILE", "work")
    outputs = [
        new_output("stream", name="stderr", text=f"using {PROFILE_SECRET}\n"),
        new_output("display_data", data={"text/plain": "table", "text/html": f"<td>{PROFILE_SECRET}</td>"}),
        new_output("error", ename="ValueError", evalue="bad",
                   traceback=[f"\x1b[0;31mValueError\x1b[0m: {PROFILE_SECRET[:6]}\x1b[1m{PROFILE_SECRET[6:]}"]),
    ]
    for n, output in enumerate(outputs):
        (tmp_path / str(n)).mkdir()
        out = executed(tmp_path / str(n), output)
        with pytest.raises(runner.SecretLeak, match="secret key of profile 'work'"):
            runner.scan_for_secrets(out)
        assert PROFILE_SECRET not in out.read_text()


def test_error_messages_scrub_a_profile_secret_and_a_labelled_token(aws_files):
    aws_files.write_text(f"[default]\naws_access_key_id = AKIA{'D' * 16}\naws_secret_access_key = {PROFILE_SECRET}\n")
    text = bedrock.scrub(f"Bedrock said: bad signature for {PROFILE_SECRET}; SessionToken={TOKEN[:30]}")
    assert PROFILE_SECRET not in text and TOKEN[:30] not in text and "<redacted>" in text
