"""Writes notebooks/07_search.ipynb. The .ipynb is the source of truth once committed; this
script documents how it was made and can regenerate it (outputs cleared)."""

from nbformat.v4 import new_code_cell, new_markdown_cell
from nbbuild import write

cells = [
    new_markdown_cell("""# 07 · Search: an interactive search app inside JupyterLab

**What you will learn**
- how the pieces of the workbook become a search a person can use: pick or upload a photo, get the
  most similar catalogue images;
- to *see* the difference the garment cut-out makes: the same query searched with the garment only
  and with the whole photo, side by side, with the true matches marked;
- what happens to a photo you upload (it is checked, masked and cut out exactly like the catalogue);
- how long one query takes.

**Prerequisites**
- notebooks 04 (embedding) and 05 (indexing) explain what is searched here; you do not have to run
  them first: the next cells build (or re-open) the index through the cache;
- open this notebook in JupyterLab (`make lab`) to use the app; run headless, it prints its results."""),
    new_markdown_cell("""## Settings

The **parameters** cell: `make run` (papermill) may override these; `None` means "use
`workbook.toml`, then `WORKBOOK_*` environment variables, then the defaults". `example_query` is a
catalogue image id (`None` picks one whose item has several photos); `k` is how many results to show."""),
    new_code_cell("""backend = None
masker = None
garment_prompt = None
example_query = None
k = 5""", metadata={"tags": ["parameters"]}),
    new_code_cell("""from helpers import load_settings

settings = load_settings(backend=backend, masker=masker, garment_prompt=garment_prompt)
print(f"backend = {settings.backend}, masker = {settings.effective_masker}, catalogue = {settings.catalog}")"""),
    new_markdown_cell("""## Step 1 · Build or open the index

The app searches two ChromaDB collections: one of **garment cut-outs** and one of **full photos**.
`run_pipeline` makes them: load the catalogue, mask, cut out, embed, index. Every step goes through
the content-addressed cache, so after notebooks 04-06 (or a second run) this takes seconds and makes
no model call."""),
    new_code_cell("""from helpers.pipeline import run_pipeline

built = run_pipeline(settings, reference=False)
print(f"{len(built.table)} catalogue images, {built.table['item_id'].nunique()} items, "
      f"embedder {built.embedder_id} ({built.dim}-d), built in {built.timings_s['total']:.1f} s")
for view, facts in built.index.items():
    print(f"  {view:<8} collection {facts['collection']}: {facts['count']} vectors")"""),
    new_markdown_cell("""Both collections hold one vector per catalogue image (an image whose garment could not be cut
out is only in the full-photo collection). The time above is mostly cache reads when the index was
built before.

## Step 2 · The app

- **Query**: choose a catalogue image in *Catalogue*, or *Upload photo* to search with your own
  picture (JPEG, PNG, WebP…; it is checked first, and a file that is not a usable image is refused
  with a message).
- **Mode**: *garment only* cuts the garment out of the query with the same masker as the catalogue
  and shows you the mask and the cut-out that were searched; *full image* searches with the whole
  photo; *both side by side* shows the two result lists next to each other.
- **Top-k** and the **category / colour** filters narrow the results; the line under the controls
  says which backend, masker and embedder are at work.
- A green frame and **✓ same item** mark results that show the query's own item (another photo of
  the same garment); a catalogue query leaves itself out of its results."""),
    new_code_cell("""from helpers.app import SearchApp

app = SearchApp(settings)
app.k.value = k
app.select(example_query or app.example_query())
app"""),
    new_markdown_cell("""In JupyterLab the app is live: change the query or the mode and the results update. When this
notebook runs headless (papermill, `make run`), the widgets are saved but not drawn, so here is the
same result as text."""),
    new_code_cell("""print(app.view.to_text())"""),
    new_markdown_cell("""## Step 3 · Garment or whole photo, side by side

The same query in both modes. Count the same-item results in each list: that count is what
notebook 06 measures over every query of the catalogue."""),
    new_code_cell("""from helpers.notebooks import record

with app.hold():
    app.mode.value = "both"
both = app.view
print(both.to_text())
g, f = both.same_item_count("garment"), both.same_item_count("full")
record("search_same_item_garment", g)
record("search_same_item_full", f)
print(f"garment only: {g} of {both.k} results are the query's item; full photo: {f} of {both.k}.")"""),
    new_markdown_cell("""The garment search looks at the dress and nothing else, so other photos of the same dress rank
high even when they were taken in another room or pose. The whole-photo search also matches the
background and the pose, so photos from the *same shoot* of *other* dresses compete with the true
matches. One query is an anecdote: notebook 06 gives the measured difference over all queries.

## Step 4 · Your own photo, and how long a query takes

An upload goes through the same gate as the catalogue (`helpers.images.open_image`: file type by
content, size and pixel limits, EXIF orientation, transparency on white) and is then masked, cut out
and embedded. Here the example photo's bytes are "uploaded" from code; an uploaded photo does not
know its item, so nothing is marked, and its own copy in the catalogue comes first."""),
    new_code_cell("""catalogue_seconds = both.seconds
photo = app.catalog.set_index("image_id").loc[both.query.image_id, "image_path"]
uploaded = app.upload_bytes("my_photo.jpg", open(photo, "rb").read())
print(uploaded.to_text())"""),
    new_markdown_cell("""With the whole photo, the uploaded copy finds its own catalogue photo first (score close to 1).
In garment mode the upload was masked and cut out fresh, so the app shows *its* mask and cut-out.
How long did the two queries take?"""),
    new_code_cell("""record("search_catalog_query_s", round(catalogue_seconds, 3))
record("search_upload_query_s", round(uploaded.seconds, 3))
print(f"catalogue query (both modes): {catalogue_seconds:.2f} s; upload query (both modes): {uploaded.seconds:.2f} s")"""),
    new_markdown_cell("""Most of a query's time goes to masking and embedding the query photo; a catalogue photo (or a
photo uploaded twice) is found in the cache, and the ChromaDB lookup itself takes milliseconds. On
the Bedrock backend a new photo costs one mask call and one or two embedding calls."""),
]

write("07_search", cells)
