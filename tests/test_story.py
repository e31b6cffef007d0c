"""One true story everywhere a learner or facilitator reads: the README (a short front door), the
facilitator's guide, docs/ and every notebook say the same thing about which Bedrock models run,
and every relative link leads somewhere. A retired model is never named as one in use."""
import re
from pathlib import Path

import nbformat
import pytest

from helpers import cost, load_settings, maskers
from helpers.bedrock import lifecycle
from helpers.settings import PROJECT_ROOT
from helpers.workbook.notebooks import NOTEBOOK_DIR, list_appendices, list_notebooks

README = PROJECT_ROOT / "README.md"
GUIDE = NOTEBOOK_DIR / "README.md"
ARCHITECTURE = PROJECT_ROOT / "docs" / "architecture.md"
HELPERS = PROJECT_ROOT / "helpers"
DOCS = sorted((PROJECT_ROOT / "docs").glob("*.md"))
RETIRED_NAMES = sorted({r.label.rsplit(" v", 1)[0] for r in lifecycle.RETIRED.values()})  # Titan Image Generator, Nova Canvas
SAYS_RETIRED = ("retired", "end of life", "past their end", "past its end", "legacy", "no longer")
BUNDLED_IMAGES = 240  # worn photos in the bundled catalogue (seed 0), the number the README prices


def paragraphs(path: Path) -> list[str]:
    """Text blocks a reader sees together: markdown paragraphs, or each notebook cell."""
    if path.suffix == ".ipynb":
        return [c.source for c in nbformat.read(path, as_version=4).cells]
    return [p for p in re.split(r"\n\s*\n", path.read_text()) if p.strip()]


TEXTS = [README, GUIDE, *DOCS, *list_notebooks(), *list_appendices()]


@pytest.mark.parametrize("path", TEXTS, ids=[p.name for p in TEXTS])
def test_a_retired_mask_model_is_only_named_as_retired(path):
    for block in paragraphs(path):
        for name in RETIRED_NAMES:
            if name in block:
                assert any(w in block.lower() for w in SAYS_RETIRED), (
                    f"{path.name} names {name} without saying it is retired: {block[:160]!r}")
        assert "Titan masks" not in block and "masks dominate" not in block.lower(), (
            f"{path.name} prices retired Titan masks: {block[:160]!r}")


def test_the_readme_asks_for_the_models_the_bedrock_track_runs_and_prices_them_with_its_estimate():
    text = README.read_text()
    track = load_settings(backend="bedrock")
    assert track.effective_masker == "boxes"
    assert f"`{track.box_model_id}`" in text and f"`{track.embed_model_id}`" in text
    assert 'masker = "local"' not in text
    boxes = cost.estimate(BUNDLED_IMAGES, 0, maskers.get_masker(track).price_per_call, "boxes")
    embeds = cost.estimate(2 * BUNDLED_IMAGES, 0, track.embed_price_usd, "embeddings")
    for est in (boxes, embeds):
        money = str(est).rsplit("about ", 1)[1]
        assert f"**{money}**" in text, f"the README should quote the workbook's estimate {est}"


def test_the_readme_is_a_front_door():
    text = README.read_text()
    assert len(text.splitlines()) <= 110 and len(text.split()) <= 1100, "keep the README to about two screens"
    assert "00_setup" in text and "make run" in text and "make test" in text
    for doc in ("parser", "performance", "architecture", "contributing"):
        assert f"docs/{doc}.md" in text


@pytest.mark.parametrize("path", [README, GUIDE, *DOCS], ids=lambda p: p.name)
def test_every_relative_link_resolves(path):
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()):
        if "://" in target:
            continue
        assert (path.parent / target).exists(), f"{path.name} links to {target}, which does not exist"


def module_table() -> dict[str, str]:
    """docs/architecture.md's module table: each row's first cell (`cache.py`, or `maskers/` for a
    subpackage) -> the whole row."""
    table = ARCHITECTURE.read_text().split("<!-- module table:", 1)[1].split("\n\n", 1)[0]
    return {m.group(1): m.group(0) for m in re.finditer(r"^\| `([^`]+)` \|.*$", table, re.M)}


def test_the_architecture_table_names_every_module_of_helpers():
    rows = module_table()
    packages = sorted(p.parent for p in HELPERS.glob("*/__init__.py"))
    names = [m.name for m in sorted(HELPERS.glob("*.py"))] + [f"{p.name}/" for p in packages]
    missing = [n for n in names if n not in rows]
    assert not missing, f"docs/architecture.md's module table has no row for {', '.join(missing)}"
    gone = [n for n in rows if n not in names]
    assert not gone, f"docs/architecture.md's module table has rows for modules helpers/ no longer has: {gone}"
    for package in packages:
        unnamed = [m.stem for m in sorted(package.glob("*.py"))
                   if m.stem != "__init__" and f"`{m.stem}`" not in rows[f"{package.name}/"]]
        assert not unnamed, f"docs/architecture.md's `{package.name}/` row does not name {', '.join(unnamed)}"
