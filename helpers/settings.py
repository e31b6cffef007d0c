"""One `Settings` object for everything a notebook or the CLI may change.

Why one object: notebooks, the CLI and tests must agree on where data, caches and the index
live and which backend runs. Precedence, lowest to highest: defaults, an optional
`workbook.toml` in the project root, environment variables prefixed `WORKBOOK_`, explicit
arguments (papermill parameters). Secrets never live here: AWS credentials come from boto3's
usual chain (profile, environment, instance role) only.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from helpers.errors import SettingsError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ENV_PREFIX = "WORKBOOK_"

BACKENDS = ("local", "bedrock")
# Masker names (helpers.maskers.get_masker): "auto" is the default offline masker on the local backend
# and "boxes" on Bedrock; "local" is the default offline masker (the garment parser, #14); "parser"
# names it ("parser-fast": without its mirror view, twice as fast, no quality score); "pose" names
# the pose masker (v5) itself; "titan" is Titan Image Generator / Nova Canvas
# inpainting on Bedrock, "bedrock" its older alias; "boxes" a Nova vision box + the offline mask;
# "reference" the catalogue's ground-truth masks.
MASKERS = ("auto", "local", "parser", "parser-fast", "pose", "titan", "bedrock", "boxes", "reference")
MASKER_ALIASES = {"bedrock": "titan"}
#: The Nova vision model that draws the garment's box (masker "boxes"). Verified in the Amazon
#: Nova 2 user guide, "Core inference" model table (read 2026-11): Nova 2 Lite is called through
#: the inference profiles us.amazon.nova-2-lite-v1:0 / global.amazon.nova-2-lite-v1:0.
BOX_MODEL_DEFAULT = "us.amazon.nova-2-lite-v1:0"
BOX_PROMPT_DEFAULT = (
    "Find the {garment} the person in this photo wears. Answer with JSON only, no prose: "
    '{{"boxes": [[x1, y1, x2, y2]]}} where x1, y1 is the top-left and x2, y2 the bottom-right '
    "corner of the {garment}, on a 0-1000 scale relative to the image width and height. "
    'If there is no {garment}, answer {{"boxes": []}}.')
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
    masker: str = "auto"  # auto: local -> offline masker, bedrock -> "boxes"; see MASKERS
    aws_region: str = "us-east-1"
    aws_profile: str | None = None
    mask_model_id: str = "amazon.titan-image-generator-v2:0"
    garment_prompt: str = "dress"
    # every garment the index is built for, comma-separated (e.g. "dress,top,skirt,trousers"): one
    # garment collection each; empty = only garment_prompt (the default keeps `make run` one prompt)
    index_prompts: str = ""
    box_model_id: str = BOX_MODEL_DEFAULT   # masker "boxes": Nova vision model / inference profile
    box_prompt: str = BOX_PROMPT_DEFAULT     # "{garment}" is replaced by the garment prompt
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
    batch_threshold: int = 1000  # uncached images above which Bedrock embeds through a batch job
    batch_bucket: str | None = None  # S3 bucket for batch job input/output (your account's)
    batch_prefix: str = "workbook-batch"
    batch_role_arn: str | None = None  # IAM service role Bedrock assumes to read/write the bucket

    def __post_init__(self) -> None:
        _check_choice("backend", self.backend, BACKENDS)
        _check_choice("masker", self.masker, MASKERS)
        _check_choice("embed_dim", self.embed_dim, EMBED_DIMS)
        if not self.garment_prompt.strip() or len(self.garment_prompt) > 512:
            raise SettingsError("garment_prompt must be 1-512 characters (Titan's limit)")
        if any(not p.strip() or len(p.strip()) > 512 for p in self.index_prompts.split(",")) and self.index_prompts:
            raise SettingsError("index_prompts must be garment names separated by commas, e.g. dress,top,skirt")
        if "{garment}" not in self.box_prompt or len(self.box_prompt) > 4000:
            raise SettingsError("box_prompt must contain '{garment}' and be at most 4000 characters")
        for name in ("concurrency", "max_retries", "chroma_port", "max_image_pixels",
                     "max_image_bytes", "workers", "batch_threshold"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        for name, top, why in _UPPER_BOUNDS:
            if getattr(self, name) > top:
                raise SettingsError(f"{name}={getattr(self, name)!r} is too large: at most {top} ({why})")
        for name in ("max_spend_usd", "mask_price_usd", "embed_price_usd"):
            if not math.isfinite(getattr(self, name)) or getattr(self, name) < 0:
                raise SettingsError(f"{name} must be >= 0 and finite, got {getattr(self, name)!r}")
        for f in fields(self):
            if f.type in ("Path", Path) or f.name in _PATH_FIELDS:
                value = Path(getattr(self, f.name)).expanduser()
                if not value.is_absolute():
                    value = PROJECT_ROOT / value
                if value.exists() and not value.is_dir():
                    raise SettingsError(f"{f.name}={value} is a file, but a folder is expected there; "
                                        "point the setting at a folder, or move the file away")
                blocker = next((p for p in value.parents if p.exists() and not p.is_dir()), None)
                if blocker is not None:  # a folder can never be made below a file
                    raise SettingsError(f"{f.name}={value} lies below {blocker}, which is a file; point the "
                                        "setting at a folder elsewhere, or move the file away")
                object.__setattr__(self, f.name, value)

    @property
    def effective_masker(self) -> str:
        """The masker that runs: `auto` is the offline masker locally and, on Bedrock, "boxes"
        (a Nova vision box + the offline mask): no live Bedrock model returns masks any more.
        "bedrock" is the old name of "titan" (Titan Image Generator / Nova Canvas)."""
        if self.masker == "auto":
            return "boxes" if self.backend == "bedrock" else "local"
        return MASKER_ALIASES.get(self.masker, self.masker)

    @property
    def prompts(self) -> tuple[str, ...]:
        """The garments the index is built for: garment_prompt first (what metrics judge), then
        the other index_prompts, each once."""
        out = [self.garment_prompt.strip()]
        for p in self.index_prompts.split(","):
            if p.strip() and p.strip() not in out:
                out.append(p.strip())
        return tuple(out)

    def replace(self, **changes: Any) -> "Settings":
        """A copy with some values changed, validated like any other."""
        return load_settings(toml_path=None, env={}, base=self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """Plain values (paths as strings), safe to print: settings never hold secrets."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}


#: Upper bounds, whatever the machine: beyond them a value is a typo, not a wish. (The number of
#: mask processes actually started is further limited by cores and memory: helpers.resources.)
_UPPER_BOUNDS = (
    ("workers", 64, "mask worker processes; each takes ~600 MB, and more than the cores only queue"),
    ("concurrency", 64, "parallel Bedrock requests; the account's quota throttles far below that"),
    ("chroma_port", 65535, "a TCP port is 1-65535"),
    ("max_retries", 20, "botocore's retries back off exponentially"),
)

_PATH_FIELDS = {"data_dir", "catalog", "cache_dir", "chroma_path", "run_dir"}


def _check_choice(name: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise SettingsError(f"{name}={value!r} is not allowed; choose one of {', '.join(map(str, allowed))}")


def _field_types() -> dict[str, str]:
    return {f.name: str(f.type) for f in fields(Settings)}


def _coerce(name: str, raw: Any) -> Any:
    """Turn a raw value (often a string from the environment or a CLI) into the field's type."""
    kind = _field_types()[name]
    if isinstance(raw, (list, tuple, dict)):  # e.g. garment_prompt = ["dress"]: str() would make "['dress']"
        hint = f"; write e.g. {name} = {json.dumps(raw[0])}" if isinstance(raw, (list, tuple)) and raw else ""
        raise SettingsError(f"{name}={raw!r} must be one value, not a "
                            f"{'table' if isinstance(raw, dict) else 'list'}{hint}")
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


def positive_int(text: str) -> int:
    """argparse type for counts such as --limit: a whole number >= 1, or a message saying so."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give a count >= 1") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (got {value}); leave it out to use every image")
    return value


def _read_toml(path: Path) -> dict[str, Any]:
    """The settings of a workbook.toml: all at the top level, or all in a [workbook] table.

    Why refuse a mix: with a [workbook] table present, top-level keys used to be ignored
    without a word, so `backend = "gpu"` beside it was never even checked."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{path} is not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8, "
                            "or delete the file to use the defaults") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path} is not valid TOML: {exc}; fix that line (strings need quotes, "
                            'e.g. backend = "local"), or delete the file to use the defaults') from None
    if "workbook" not in data:
        return data
    outside = sorted(k for k in data if k != "workbook")
    if outside:
        raise SettingsError(f"{path} has settings both in [workbook] and above it ({', '.join(outside)}); "
                            "put every setting in the [workbook] table (or none there)")
    if not isinstance(data["workbook"], dict):
        raise SettingsError(f"{path}: 'workbook' must be a table ([workbook]), not a value")
    return data["workbook"]


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
        values.update(_checked_keys(_read_toml(Path(toml_path)), str(toml_path)))
    env = os.environ if env is None else env
    from_env = {k[len(ENV_PREFIX):].lower(): v for k, v in env.items() if k.startswith(ENV_PREFIX)}
    values.update(_checked_keys(from_env, f"environment ({ENV_PREFIX}*)"))
    values.update(_checked_keys({k: v for k, v in overrides.items() if v is not None}, "arguments"))
    return Settings(**values)
