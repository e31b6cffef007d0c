"""00_setup runs headless on the offline backend, prints no secrets, and prices the Bedrock track
with the masker that track really runs (not a retired mask model)."""
import nbformat

from helpers import cost, load_settings, maskers
from helpers.bedrock import lifecycle
from helpers.workbook import notebooks as runner
from notebook_checks import assert_seen


def test_setup_notebook_runs_offline_and_reports_pins_and_cost(workbook_env, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "planted-secret-value-for-the-test")
    out = tmp_path / "00_setup.ipynb"
    runner.run_notebook(runner.NOTEBOOK_DIR / "00_setup.ipynb", out, {"backend": "local"})
    assert_seen(out)
    text = "\n".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                     for c in nbformat.read(out, as_version=4).cells for o in c.get("outputs", []))
    assert "packages match their pins" in text and "no AWS account needed" in text
    # the cost cell prices the masker the Bedrock track runs, with the workbook's own estimate
    track = load_settings(backend="bedrock")
    masker = maskers.get_masker(track)
    assert track.effective_masker == "boxes"
    assert str(cost.estimate(48, 0, masker.price_per_call, "boxes masks")) in text  # the small catalogue
    assert lifecycle.RETIRED.get(lifecycle.foundation_id(track.box_model_id)) is None
    for gone in lifecycle.RETIRED.values():  # no retired model is priced as the one in use
        assert f"{gone.label} mask" not in text and "Titan masks" not in text
    # the dimension of the embedder that will run (the offline one: 1,280 CNN + 64 colour numbers),
    # not the Titan-only `embed_dim` setting
    assert "1344-d vectors" in text and runner.read_records(out)["embedder_dim"] == 1344
    assert "planted-secret-value" not in out.read_text()
