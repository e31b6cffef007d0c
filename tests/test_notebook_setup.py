"""00_setup runs headless on the offline backend and prints no secrets."""
import nbformat

from helpers.workbook import notebooks as runner


def test_setup_notebook_runs_offline_and_reports_pins_and_cost(workbook_env, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "planted-secret-value-for-the-test")
    out = tmp_path / "00_setup.ipynb"
    runner.run_notebook(runner.NOTEBOOK_DIR / "00_setup.ipynb", out, {"backend": "local"})
    text = "\n".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                     for c in nbformat.read(out, as_version=4).cells for o in c.get("outputs", []))
    assert "packages match their pins" in text and "no AWS account needed" in text
    assert "Titan masks: 48 images" in text          # the small catalogue's size, from the estimate
    # the dimension of the embedder that will run (the offline one: 1,280 CNN + 64 colour numbers),
    # not the Titan-only `embed_dim` setting
    assert "1344-d vectors" in text and runner.read_records(out)["embedder_dim"] == 1344
    assert "planted-secret-value" not in out.read_text()
