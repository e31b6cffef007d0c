"""Every questionnaire says "the answers are all in this notebook": each answer's keywords must be
in the notebook's own text (its markdown and code, not the questionnaire and not the solutions), and
learner-facing text never leans on context the learner does not have ("the original demo", "the
issue")."""
import re

import nbformat
import pytest

from helpers.workbook.notebooks import NOTEBOOK_DIR

# notebook -> question number -> phrases its answer needs (case- and whitespace-insensitive)
ANSWERS = {
    "00_setup": {1: ["local", "bedrock", "the default"], 2: ["workbook.toml", "WORKBOOK_*", "parameters"],
                 3: ["profile", "instance role", "never prints a key"],
                 4: ["box calls cost the most", "cached by content"], 5: ["runs/<timestamp>/", "runs/latest"]},
    "01_data": {1: ["item_id", "image_id"], 2: ["background", "light", "camera", "pose", "JPEG quality"],
                3: ["same shoot", "median"], 4: ["near twins", "hard negatives"],
                5: ["skipped", "with a reason"], 6: ["needs only the first three"]},
    "02_masking": {1: ["end of life"], 2: ["Frame", "Network", "Edges", "Prompt"], 3: ["refused with a message"],
                   4: ["intersection over union"], 5: ["mirror image", "agree", "0.8"],
                   6: ["masker calls", "from the cache"]},
    "A1_parser": {1: ["divisible by 5", "never used to train or tune"], 2: ["0.88", "pose masker"],
                  3: ["missed the worst one", "both views"], 4: ["maskPrompt"], 5: ["skirt rests on 8 held-out photos", "intervals are wide"]},
    "03_cutting": {1: ["square crop", "fills the frame"], 2: ["share", "plain white"],
                   3: ["Dilation", "feathering"], 4: ["NoGarment"], 5: ["from the cache"]},
    "04_embedding": {1: ["1,344", "length 1"], 2: ["ONNX Runtime", "faster than PyTorch"],
                     3: ["model calls", "from the cache"], 4: ["of the 5 nearest images"],
                     5: ["same item", "same shoot"]},
    "05_indexing": {1: ["never meet", "wrong size"], 2: ["embedding_function=None", "query_texts="],
                    3: ["writes nothing"], 4: ["the same masker, the same cut"],
                    5: ["ef_search", "recall@10", "ef` = 16"], 6: ["server", "chroma_host"]},
    "06_metrics": {1: ["relevant", "excluded"], 2: ["95 times out of 100"], 3: ["same shoot", "chance"],
                   4: ["never whether they are the **right** garment"], 5: ["perfect masks", "garment_reference"],
                   6: ["look-alike", "poor mask"]},
    "07_search": {1: ["cuts the garment out of the query"], 2: ["same_item_count"], 3: ["refused with a message"],
                  4: ["same bytes", "keyed by content", "masked and embedded"],
                  5: ["collections", "cache", "nothing lives in your AWS account"]},
}


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).lower()


def own_text(nb) -> str:
    """The notebook's teaching text: every cell but the questionnaire and the solutions."""
    cells = [c for c in nb.cells if "solution" not in c.metadata.get("tags", [])
             and not c.source.lstrip().startswith("## Questionnaire")]
    return _norm("\n".join(c.source for c in cells))


def questions(nb) -> dict[int, str]:
    cell = next(c for c in nb.cells if c.source.lstrip().startswith("## Questionnaire"))
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^(\d+)\. (.+)$", cell.source, re.M)}


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_every_questionnaire_answer_is_in_the_notebook(name):
    nb = nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
    asked = questions(nb)
    assert set(asked) == set(ANSWERS[name]), f"{name}: questions {sorted(asked)} vs keywords {sorted(ANSWERS[name])}"
    text = own_text(nb)
    missing = {q: [k for k in keys if _norm(k) not in text] for q, keys in ANSWERS[name].items()}
    missing = {q: ks for q, ks in missing.items() if ks}
    assert not missing, f"{name}: answers not in the notebook's text: " + \
        "; ".join(f"Q{q} ({asked[q][:50]}…): {ks}" for q, ks in missing.items())


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_no_context_the_learner_does_not_have(name):
    text = _norm("\n".join(c.source for c in nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4).cells))
    for phrase in ("the original demo", "the issue", "issue #"):
        assert phrase not in text, f"{name} says {phrase!r} without saying what it is"
