"""One `Settings` object for everything a notebook or the CLI may change.

Why one object: notebooks, the CLI and tests must agree on where data, caches and the index
live and which backend runs. Precedence, lowest to highest: defaults, an optional
`workbook.toml` in the project root, environment variables prefixed `WORKBOOK_`, explicit
arguments (papermill parameters). Secrets never live here: AWS credentials come from boto3's
usual chain (profile, environment, instance role) only.
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from helpers.errors import SettingsError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ENV_PREFIX = "WORKBOOK_"

BACKENDS = ("local", "bedrock")
# Masker names (helpers.maskers.get_masker): "auto" follows the backend; "local" is the default offline
# masker (the garment parser, #14); "parser" names it; "pose" names the pose masker (v5) itself; "titan" is Titan Image
# Generator / Nova Canvas inpainting on Bedrock, "bedrock" its older alias; "reference" the
# catalogue's ground-truth masks.
MASKERS = ("auto", "local", "parser", "pose", "titan", "bedrock", "reference")
MASKER_ALIASES = {"bedrock": "titan"}
MASK_MODEL_IDS = (
    "amazon.titan-image-generator-v2:0",
    "amazon.titan-image-generator-v1",
    "amazon.nova-canvas-v1:0",
)
EMBED_MODEL_IDS = (
    "amazon.titan-embed-image-v1",
    "amazon.nova-2-multimodal-embeddings-v1:0",
)
EMBED_DIMS = (256, 384, 1024, 3072)


@dataclass(frozen=True)
class Settings:
    """Every knob of the workbook. Paths are resolved against the project root."""

    backend: str = "local"
    masker: str = "auto"  # auto = same as backend; see MASKERS
    aws_region: str = "us-east-1"
    aws_profile: str | None = None
    mask_model_id: str = "amazon.titan-image-generator-v2:0"
    garment_prompt: str = "dress"
    embed_model_id: str = "amazon.titan-embed-image-v1"
    embed_dim: int = 1024
    data_dir: Path = Path("data")
    catalog: Path = Path("data/sample")
    cache_dir: Path = Path(".cache/workbook")
    chroma_path: Path = Path(".cache/chroma")
    run_dir: Path = Path("runs/latest")  # where executed notebooks and metrics.json go
    chroma_host: str | None = None
    chroma_port: int = 8000
    concurrency: int = 4
    max_retries: int = 6
    max_spend_usd: float = 5.0
    mask_price_usd: float = 0.01
    embed_price_usd: float = 0.00006
    max_image_pixels: int = 40_000_000
    max_image_bytes: int = 30_000_000
    workers: int = 2  # local CPU processes for masking

    def __post_init__(self) -> None:
        _check_choice("backend", self.backend, BACKENDS)
        _check_choice("masker", self.masker, MASKERS)
        _check_choice("embed_dim", self.embed_dim, EMBED_DIMS)
        if not self.garment_prompt.strip() or len(self.garment_prompt) > 512:
            raise SettingsError("garment_prompt must be 1-512 characters (Titan's limit)")
        for name in ("concurrency", "max_retries", "chroma_port", "max_image_pixels",
                     "max_image_bytes", "workers"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("max_spend_usd", "mask_price_usd", "embed_price_usd"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for f in fields(self):
            if f.type in ("Path", Path) or f.name in _PATH_FIELDS:
                value = Path(getattr(self, f.name)).expanduser()
                if not value.is_absolute():
                    value = PROJECT_ROOT / value
                object.__setattr__(self, f.name, value)

    @property
    def effective_masker(self) -> str:
        """The masker that runs: `auto` follows the backend."""
        return self.backend if self.masker == "auto" else self.masker

    def replace(self, **changes: Any) -> "Settings":
        """A copy with some values changed, validated like any other."""
        return load_settings(toml_path=None, env={}, base=self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """Plain values (paths as strings), safe to print: settings never hold secrets."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}


_PATH_FIELDS = {"data_dir", "catalog", "cache_dir", "chroma_path", "run_dir"}


def _check_choice(name: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise SettingsError(f"{name}={value!r} is not allowed; choose one of {', '.join(map(str, allowed))}")


def _field_types() -> dict[str, str]:
    return {f.name: str(f.type) for f in fields(Settings)}


def _coerce(name: str, raw: Any) -> Any:
    """Turn a raw value (often a string from the environment or a CLI) into the field's type."""
    kind = _field_types()[name]
    if raw is None:
        if "None" in kind:
            return None
        raise SettingsError(f"{name} cannot be empty")
    try:
        if kind.startswith("int"):
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
        if kind == "Path":
            return Path(str(raw))
        if "None" in kind and str(raw).strip().lower() in ("", "none", "null"):
            return None
        return str(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"{name}={raw!r} is not a valid {kind.split(' ')[0]}") from None


def _checked_keys(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    known = _field_types()
    out = {}
    for key, raw in values.items():
        if key not in known:
            raise SettingsError(
                f"unknown setting {key!r} in {source}; known settings: {', '.join(sorted(known))}")
        out[key] = _coerce(key, raw)
    return out


def load_settings(toml_path: Path | str | None = PROJECT_ROOT / "workbook.toml",
                  env: Mapping[str, str] | None = None,
                  base: Settings | None = None,
                  **overrides: Any) -> Settings:
    """Build settings from defaults < workbook.toml < WORKBOOK_* env vars < `overrides`.

    `overrides` whose value is None are ignored, so papermill parameters left at None fall
    through to the layers below.
    """
    values: dict[str, Any] = dataclasses.asdict(base) if base else {}
    if toml_path is not None and Path(toml_path).is_file():
        with open(toml_path, "rb") as fh:
            data = tomllib.load(fh)
        values.update(_checked_keys(data.get("workbook", data), str(toml_path)))
    env = os.environ if env is None else env
    from_env = {k[len(ENV_PREFIX):].lower(): v for k, v in env.items() if k.startswith(ENV_PREFIX)}
    values.update(_checked_keys(from_env, f"environment ({ENV_PREFIX}*)"))
    values.update(_checked_keys({k: v for k, v in overrides.items() if v is not None}, "arguments"))
    return Settings(**values)
