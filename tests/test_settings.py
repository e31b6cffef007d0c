"""Settings precedence (defaults < workbook.toml < WORKBOOK_* < arguments) and validation errors."""
from pathlib import Path

import pytest

from helpers.settings import PROJECT_ROOT, Settings, SettingsError, load_settings


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "workbook.toml"
    path.write_text(text)
    return path


def test_defaults_are_offline_and_dress(tmp_path):
    s = load_settings(toml_path=tmp_path / "missing.toml", env={})
    assert (s.backend, s.effective_masker, s.garment_prompt, s.concurrency) == ("local", "local", "dress", 4)
    assert s.catalog == PROJECT_ROOT / "data" / "sample"


def test_precedence_toml_then_env_then_arguments(tmp_path):
    toml = write_toml(tmp_path, 'concurrency = 2\ngarment_prompt = "skirt"\nembed_dim = 384\n')
    env = {"WORKBOOK_CONCURRENCY": "6", "WORKBOOK_EMBED_DIM": "256"}
    s = load_settings(toml_path=toml, env=env, embed_dim=1024)
    assert s.garment_prompt == "skirt"      # toml beats default
    assert s.concurrency == 6               # env beats toml
    assert s.embed_dim == 1024              # argument beats env


def test_none_arguments_fall_through_like_papermill_defaults(tmp_path):
    s = load_settings(toml_path=None, env={"WORKBOOK_BACKEND": "bedrock"}, backend=None)
    assert s.backend == "bedrock" and s.effective_masker == "boxes"  # no live Bedrock mask model


def test_toml_workbook_table_is_accepted(tmp_path):
    toml = write_toml(tmp_path, '[workbook]\nbackend = "bedrock"\nmasker = "local"\n')
    s = load_settings(toml_path=toml, env={})
    assert (s.backend, s.effective_masker) == ("bedrock", "local")


def test_relative_paths_resolve_against_project_root_and_absolute_are_kept(tmp_path):
    s = load_settings(toml_path=None, env={"WORKBOOK_CACHE_DIR": "x/cache"}, chroma_path=str(tmp_path))
    assert s.cache_dir == PROJECT_ROOT / "x" / "cache"
    assert s.chroma_path == tmp_path


@pytest.mark.parametrize("source, message", [
    ({"env": {"WORKBOOK_COLOUR": "red"}}, "unknown setting 'colour'"),
    ({"backend": "aws"}, "choose one of local, bedrock"),
    ({"embed_dim": 512}, "embed_dim=512 is not allowed"),
    ({"env": {"WORKBOOK_CONCURRENCY": "many"}}, "concurrency='many' is not a valid int"),
    ({"concurrency": 0}, "concurrency must be a positive integer"),
    ({"max_spend_usd": -1}, "max_spend_usd must be >= 0"),
    ({"garment_prompt": "x" * 513}, "1-512 characters"),
    ({"masker": "magic"}, "choose one of auto, local, parser, parser-fast, pose, titan, bedrock, boxes, reference"),
    ({"box_prompt": "find the dress"}, "box_prompt must contain '{garment}'"),
    ({"batch_threshold": 0}, "batch_threshold must be a positive integer"),
])
def test_bad_keys_and_values_name_the_key_and_allowed_values(source, message):
    env = source.pop("env", {})
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace("*", r"\*")):
        load_settings(toml_path=None, env=env, **source)


def test_unknown_key_in_toml_names_the_file(tmp_path):
    toml = write_toml(tmp_path, 'aws_secret_access_key = "nope"\n')
    with pytest.raises(SettingsError, match="unknown setting 'aws_secret_access_key' in .*workbook.toml"):
        load_settings(toml_path=toml, env={})


def test_settings_hold_no_secret_fields_and_replace_validates():
    names = set(Settings.__dataclass_fields__)
    assert not {n for n in names if "secret" in n or "token" in n or "access_key" in n}
    s = load_settings(toml_path=None, env={})
    assert s.replace(concurrency=8).concurrency == 8
    with pytest.raises(SettingsError):
        s.replace(backend="nope")


@pytest.mark.parametrize("changes, message", [
    ({"workers": 100000}, r"workers=100000 is too large: at most 64"),
    ({"concurrency": 5000}, r"concurrency=5000 is too large"),
    ({"chroma_port": 70000}, r"chroma_port=70000 is too large: at most 65535"),
    ({"max_spend_usd": float("nan")}, r"max_spend_usd must be >= 0 and finite"),
    ({"max_spend_usd": float("inf")}, r"max_spend_usd must be >= 0 and finite"),
])
def test_absurd_numbers_are_refused_with_their_bound(changes, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(toml_path=None, env={}, **changes)


def test_top_level_keys_beside_a_workbook_table_are_refused(tmp_path):
    toml = write_toml(tmp_path, 'backend = "gpu"\n[workbook]\nmasker = "local"\n')
    with pytest.raises(SettingsError, match=r"both in \[workbook\] and above it \(backend\)"):
        load_settings(toml_path=toml, env={})


def test_toml_syntax_error_names_the_file_and_line(tmp_path):
    toml = write_toml(tmp_path, 'masker = "local"\nbackend = local\n')
    with pytest.raises(SettingsError, match=r"workbook\.toml is not valid TOML: .*line 2"):
        load_settings(toml_path=toml, env={})


def test_a_path_setting_that_is_a_file_fails_before_any_work(tmp_path):
    afile = tmp_path / "cache.txt"
    afile.write_text("not a folder")
    with pytest.raises(SettingsError, match=r"cache_dir=.*cache\.txt is a file, but a folder is expected"):
        load_settings(toml_path=None, env={"WORKBOOK_CACHE_DIR": str(afile)})
