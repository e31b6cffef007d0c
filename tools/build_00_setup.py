"""Writes notebooks/00_setup.ipynb. The .ipynb is the source of truth once committed; this
script documents how it was made and can regenerate it (outputs cleared)."""

from nbformat.v4 import new_code_cell, new_markdown_cell
from nbbuild import write

cells = [
    new_markdown_cell("""# 00 · Setup: what this workbook teaches and is your machine ready?

**What you will learn**
- what the workbook proves: searching with the *garment cut out of the photo* finds the same garment far
  better than searching with the *whole photo*;
- the order of the notebooks and the one idea each teaches;
- how to choose a backend (`local`, offline, the default; or `bedrock`, Amazon Titan on AWS);
- how to check your environment, and where every output goes.

**Prerequisites**
- the workbook's environment (`make run` or `make lab` creates it in `.venv`);
- nothing else for the offline track; for the Bedrock track an AWS account with model access
  (see the README's *Bedrock track* section).
"""),
    new_markdown_cell("""## The path through the workbook

| notebook | one idea |
|---|---|
| `01_data` | a catalogue with ground truth, and why *photoshoots* are the confounder |
| `02_masking` | a garment mask from a text prompt: Titan on Bedrock, or the offline masker |
| `03_cutting` | from mask to cut-out: on white, transparent, square crop |
| `04_embedding` | images become vectors; full photo vs cut-out |
| `05_indexing` | ChromaDB: two collections, cosine search, HNSW tuning |
| `06_metrics` | the proof: retrieval measured against ground truth, with confidence intervals |
| `07_search` | an interactive search app inside JupyterLab |

Data flows one way; each step is one module in `helpers/`:

```
catalogue ─► catalog ─► masking ─► cutting ─► embedding ─► index ─► search / metrics
                           └────────── cache (content-addressed) ──────┘
```

Every notebook reads its settings the same way, so let us start there. The next cell is the
**parameters** cell: `make run` (papermill) can override these values; `None` means "use
`workbook.toml`, then `WORKBOOK_*` environment variables, then the defaults"."""),
    new_code_cell("""backend = None
garment_prompt = None""", metadata={"tags": ["parameters"]}),
    new_code_cell("""from helpers import load_settings
from helpers import environment

settings = load_settings(backend=backend, garment_prompt=garment_prompt)
print(f"backend = {settings.backend}, masker = {settings.effective_masker}, prompt = {settings.garment_prompt!r}")"""),
    new_markdown_cell("""The backend decides who makes masks and vectors. `local` runs everything on this machine
(mediapipe for the person, OpenCV for the garment, EfficientNet-Lite0 under ONNX Runtime for the
vectors) and needs no account. `bedrock` calls Amazon Titan Image Generator (masks) and Titan
Multimodal Embeddings (vectors). To switch, set `backend = "bedrock"` in the parameters cell, put
`backend = "bedrock"` in `workbook.toml`, or export `WORKBOOK_BACKEND=bedrock`.

## Check the environment

The versions below are compared with the exact pins in `requirements.in`."""),
    new_code_cell("""packages = environment.package_report()
print(environment.python_report()["python"], "|", f"{packages.ok.sum()}/{len(packages)} packages match their pins")
packages"""),
    new_markdown_cell("""Every row should say `ok = True`. A `False` means this kernel is not the workbook's
environment: in JupyterLab pick the kernel of `.venv`, or start JupyterLab with `make lab`.

## Bedrock: credentials and model access (Bedrock track only)

The next cell runs only when the backend is `bedrock`. It reports *where* credentials come from
(profile, environment, instance role) and each model's lifecycle status; it never prints a key.
Titan Image Generator v2 and Nova Canvas are past their announced end of life, so many accounts can
no longer call them: the report says what to do in that case (usually: use the offline masker with
`masker = "local"` and keep Titan for embeddings)."""),
    new_code_cell("""if settings.backend == "bedrock":
    from helpers import bedrock
    display(bedrock.check_access(settings))
else:
    print("backend is 'local': no AWS account needed, nothing to check")"""),
    new_markdown_cell("""## What the Bedrock track would cost for this catalogue

The workbook estimates every Bedrock batch before it runs and stops when the estimate exceeds
`max_spend_usd`. Here is the estimate for one cold run over the catalogue (one mask call per image,
two embedding calls per image: full photo and cut-out), using the prices in the settings."""),
    new_code_cell("""from helpers import catalog, cost

n_images = len(catalog.load_catalog(settings.catalog).table) if settings.catalog.exists() else 240
print(cost.estimate(n_images, 0, settings.mask_price_usd, "Titan masks"))
print(cost.estimate(2 * n_images, 0, settings.embed_price_usd, "Titan embeddings"))"""),
    new_markdown_cell("""Masks dominate the cost; embeddings are nearly free. Results are cached by content, so a second
run costs nothing, and the cap `max_spend_usd` (printed below) protects you from surprises.

## Where outputs go"""),
    new_code_cell("""print(f"max_spend_usd = {settings.max_spend_usd}")
environment.output_locations(settings)"""),
    new_markdown_cell("""The catalogue is generated once (`make run` does it); the cache and index can be deleted at any time
(`make reset`) and are rebuilt on the next run; executed notebooks land in `runs/<timestamp>/` and
`runs/latest` points at the newest.

**Next:** `01_data` shows the catalogue: what a photoshoot is, and why it fools whole-photo search."""),
]

write("00_setup", cells)
