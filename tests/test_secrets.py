"""Credentials in executed notebooks and in error messages are found wherever they come from,
and a copy is called "redacted" only when nothing remains in it. Real nbformat files, a real
temporary AWS credentials file, botocore's own credential chain; the network is blocked."""
import json
import socket
from pathlib import Path
from urllib.parse import quote

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


# --- issue 24 §2: the probes of the second round ---------------------------------------------
# AWS's documented example key pair and made-up tokens of the right shape.
EXAMPLE_ID = "AKIA" + "IOSFODNN7EXAMPLE"
EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
LONG_TOKEN = ("IQoJb3JpZ2luX2VjEPLANTED//////////wEaCXVzLWVhc3QtMSJHMEUCIQD7+madeUpToken0123456789/"
              "abcdefghijKLMNOPQRSTuvwxyz+0123456789ABCDEFGHIJklmnopqrstUVWXYZ/plantedPLANTEDplanted"
              "0123456789abcdefABCDEF+/0123456789abcdefABCDEF+/0123456789abcdefABCDEFzz==")
OLD_TOKENS = ("AQoDYXdzEJr" + "madeUpOldToken0123456789/abcdefABCDEF+ghijklmnopQRSTUVwxyz0123456789abcdefABCDEF/",
              "FQoGZXIvYXdzE" + "madeUpOlderToken0123456789/abcdefABCDEF+ghijklmnopQRSTUVwxyz0123456789abcdefAB/")


def pieces(value: str) -> list[str]:
    """The parts of a value between '/', '+' and '=' that would betray it if left behind."""
    import re

    return [p for p in re.split(r"[/+=]", value) if len(p) >= 8]


def assert_gone(path: Path, *values: str) -> None:
    text = path.read_text()
    for value in values:
        for piece in pieces(value):
            assert piece not in text, f"{piece!r} is still in {path.name}"


def test_key_id_then_400_dashes_then_the_secret_is_really_redacted(tmp_path, aws_files):
    text = f"{EXAMPLE_ID}{'-' * 400}{EXAMPLE_SECRET}\n"
    out = executed(tmp_path, new_output("stream", name="stdout", text=text))
    with pytest.raises(runner.SecretLeak, match="the copy was redacted"):
        runner.scan_for_secrets(out)
    assert_gone(out, EXAMPLE_ID, EXAMPLE_SECRET)


def test_a_session_token_wrapped_over_lines_is_removed_line_by_line(tmp_path, aws_files):
    import textwrap

    wrapped = textwrap.fill(LONG_TOKEN, 64)
    assert wrapped.count("\n") == 3  # four lines, as in the probe
    out = executed(tmp_path, new_output("stream", name="stdout", text=f"token:\n{wrapped}\ndone\n"))
    with pytest.raises(runner.SecretLeak, match="the copy was redacted"):
        runner.scan_for_secrets(out)
    assert_gone(out, *wrapped.splitlines())


@pytest.mark.parametrize("kind, text", [
    ("escaped quotes", f'{{\\"SecretAccessKey\\": \\"{EXAMPLE_SECRET}\\"}}'),
    ("HTML entities", f"{{&quot;SecretAccessKey&quot;: &quot;{EXAMPLE_SECRET}&quot;}}"),
    ("HTML table cell", f"<table><tr><td>SecretAccessKey</td><td>{EXAMPLE_SECRET}</td></tr></table>"),
    ("URL-encoded token", "https://b.s3.amazonaws.com/k?X-Amz-Security-Token="
                          + quote(LONG_TOKEN, safe="") + "&X-Amz-Expires=60"),
    ("old AQoD token", f"creds.token = {OLD_TOKENS[0]}"),
    ("old FQoG token", f"{OLD_TOKENS[1]}\n"),
])
def test_encoded_and_old_style_secrets_are_found_and_removed(tmp_path, aws_files, kind, text):
    mime = "text/html" if "<" in text or "&quot;" in text else "text/plain"
    out = executed(tmp_path, new_output("display_data", data={mime: text}))
    with pytest.raises(runner.SecretLeak, match="the copy was redacted"):
        runner.scan_for_secrets(out)
    assert_gone(out, EXAMPLE_SECRET, LONG_TOKEN, *OLD_TOKENS)


def test_output_metadata_and_widget_state_are_scanned(tmp_path, aws_files):
    out = executed(tmp_path, new_output("display_data", data={"text/plain": "a widget"},
                                        metadata={"credentials": {"SecretAccessKey": EXAMPLE_SECRET}}))
    nb = nbformat.read(out, as_version=4)
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"version_major": 2, "state": {
        "a1": {"model_name": "TextModel", "state": {"value": LONG_TOKEN}}}}}
    nbformat.write(nb, out)
    with pytest.raises(runner.SecretLeak) as info:
        runner.scan_for_secrets(out)
    assert "cell 1 output 1 metadata credentials SecretAccessKey" in str(info.value)
    assert "metadata widgets" in str(info.value) and "the copy was redacted" in str(info.value)
    assert_gone(out, EXAMPLE_SECRET, LONG_TOKEN)


def test_a_secret_in_the_source_and_its_output_is_removed_from_both(tmp_path, aws_files):
    cell = new_code_cell(f'aws_secret_access_key = "{EXAMPLE_SECRET}"\nprint(aws_secret_access_key)',
                         outputs=[new_output("stream", name="stdout",
                                             text=f"aws_secret_access_key={EXAMPLE_SECRET}\n")])
    out = tmp_path / "01_src.ipynb"
    nbformat.write(new_notebook(cells=[cell]), out)
    with pytest.raises(runner.SecretLeak, match="the copy was redacted") as info:
        runner.scan_for_secrets(out)
    assert_gone(out, EXAMPLE_SECRET)  # the old scan said "redacted" and left the source as it was
    assert "cell 1 source" in str(info.value)


def test_a_value_found_in_one_output_is_removed_from_every_output(tmp_path, aws_files):
    # the key id printed in one cell, the bare secret shown by the next; a secret found with its
    # label in one output and bare in another
    cells = [new_code_cell("print(creds.access_key)", execution_count=1,
                           outputs=[new_output("stream", name="stdout", text=f"{EXAMPLE_ID}\n")]),
             new_code_cell("creds.secret_key", execution_count=2, outputs=[new_output(
                 "execute_result", data={"text/plain": f"'{EXAMPLE_SECRET}'"}, execution_count=2)]),
             new_code_cell("print(x)", execution_count=3, outputs=[
                 new_output("stream", name="stdout", text=f"SessionToken: {LONG_TOKEN[12:]}\n"),
                 new_output("stream", name="stderr", text=f"retrying with {LONG_TOKEN[12:]}\n")])]
    out = tmp_path / "01_cells.ipynb"
    nbformat.write(new_notebook(cells=cells), out)
    with pytest.raises(runner.SecretLeak, match="the copy was redacted") as info:
        runner.scan_for_secrets(out)
    assert "unlabelled 40-character secret beside a key id in cell 2" in str(info.value)
    assert_gone(out, EXAMPLE_ID, EXAMPLE_SECRET, LONG_TOKEN[12:])


def test_redacted_is_said_only_when_the_file_on_disk_is_clean(tmp_path, aws_files, monkeypatch):
    # a live secret used as a name (a JSON key) in output metadata: no string redaction can remove
    # it, so the copy must be deleted, not called "redacted"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", EXAMPLE_SECRET)
    out = executed(tmp_path, new_output("display_data", data={"text/plain": "x"},
                                        metadata={EXAMPLE_SECRET: 1}))
    with pytest.raises(runner.SecretLeak, match="could not remove it, so the copy was deleted"):
        runner.scan_for_secrets(out)
    assert not out.exists()


def test_a_run_summary_is_checked_like_a_notebook(tmp_path, aws_files):
    summary = tmp_path / "summary.json"
    error = f"ValueError: bad key {EXAMPLE_ID} {EXAMPLE_SECRET}"
    summary.write_text(json.dumps({"notebooks": [{"error": error}]}))
    found, outcome = secrets.check_file(summary)
    assert outcome == "redacted" and "notebooks 0 error" in str(found[0])
    assert_gone(summary, EXAMPLE_ID, EXAMPLE_SECRET)
    assert json.loads(summary.read_text())["notebooks"][0]["error"].startswith("ValueError: bad key")


def test_plain_outputs_and_the_workbook_notebooks_hold_nothing(aws_files):
    # no false alarm on a git hash, a sha256, a base64 figure or the workbook's own notebooks
    text = ("commit 4e8984f0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6\nsha256 " + "ab12" * 16
            + "\nsession token expired; secret_key_file = ~/.aws/credentials\n")
    assert secrets.find_in_text(text, {}) == []
    for path in runner.list_notebooks():
        assert secrets.scan_notebook(nbformat.read(path, as_version=4), {}) == [], path.name


# --- parameters that look like credentials are refused before anything runs ------------------

def token_notebook(tmp_path: Path) -> Path:
    cell = new_code_cell("token = None", metadata={"tags": ["parameters"]})
    path = tmp_path / "01_token.ipynb"
    nbformat.write(new_notebook(cells=[cell, new_code_cell("print('ran')")], metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}), path)
    return path


def test_cli_refuses_a_credential_parameter_before_running(tmp_path, aws_files, monkeypatch, capsys):
    nb, runs = token_notebook(tmp_path), tmp_path / "runs"
    monkeypatch.setattr(runner, "list_notebooks", lambda directory=None: [nb])
    monkeypatch.setattr(runner, "RUNS_DIR", runs)
    rc = runner.main(["run", "01_token", "-p", "token", f"{EXAMPLE_ID}/{EXAMPLE_SECRET}"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "parameter token looks like an AWS credential" in err
    assert EXAMPLE_ID not in err and EXAMPLE_SECRET not in err
    assert not runs.exists()  # no injected cell, no metadata.papermill, no summary.json


def test_run_all_and_run_notebook_refuse_credentials_in_parameters_or_sources(tmp_path, aws_files,
                                                                               monkeypatch):
    nb = token_notebook(tmp_path)
    with pytest.raises(runner.NotebookError, match="parameter token looks like"):
        runner.run_all([nb], {"token": EXAMPLE_ID}, runs_root=tmp_path / "runs")
    with pytest.raises(runner.NotebookError, match="parameter token secret_key looks like"):
        runner.run_notebook(nb, tmp_path / "out.ipynb", {"token": {"secret_key": "x" * 4 + EXAMPLE_SECRET}})
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", PROFILE_SECRET)  # no known shape: found by its value
    with pytest.raises(runner.NotebookError, match=r"parameter token looks like .*value of \$AWS_SECRET"):
        runner.run_all([nb], {"token": f"use {PROFILE_SECRET}"}, runs_root=tmp_path / "runs")
    leaky = tmp_path / "02_leaky.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("token = None", metadata={"tags": ["parameters"]}),
                                       new_code_cell(f"session_token = '{LONG_TOKEN}'")]), leaky)
    with pytest.raises(runner.NotebookError, match="02_leaky.ipynb holds credential-like text"):
        runner.run_notebook(leaky, tmp_path / "out.ipynb")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "out.ipynb").exists()


def test_a_real_run_fails_on_html_and_metadata_secrets_and_its_summary_and_copy_are_clean(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    show = ("from IPython.display import display\n"
            f"secret = bytes.fromhex('{EXAMPLE_SECRET.encode().hex()}').decode()\n"  # not in the source
            "row = f'<tr><td>SecretAccessKey</td><td>{secret}</td></tr>'\n"
            "display({'text/html': row, 'text/plain': 'row'},\n"
            "        raw=True, metadata={'text/html': {'token': 'IQoJb3JpZ2lu' + secret}})")
    nb = tmp_path / "01_html.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
                                       new_code_cell(show)], metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}), nb)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    results = runner.run_all([nb], {}, run_dir=run_dir)
    assert results[0].status == "failed" and "the copy was redacted" in results[0].error
    assert "metadata" in results[0].error  # the output metadata was scanned too
    for path in (run_dir / "01_html.ipynb", run_dir / "summary.json"):
        assert_gone(path, EXAMPLE_SECRET)
    assert EXAMPLE_SECRET not in capsys.readouterr().err
