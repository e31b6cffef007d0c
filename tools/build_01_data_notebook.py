"""Writes notebooks/01_data.ipynb. The .ipynb is the source of truth once committed; this
script documents how it was made and can regenerate it (outputs cleared)."""
from nbbuild import code, md, write


cells = [
    md("""# 01 · Data: a catalogue with ground truth, and why photoshoots are the confounder

**What you will learn**
- what a *catalogue* is for this workbook: photos, each labelled with the *item* (the garment) it shows;
- how the sample catalogue was drawn: 48 dresses photographed in 30 *shoots*, with exact garment and
  person masks for every photo;
- why shoots are the confounder: whole photos from one shoot look alike even when the dresses differ;
- how every image is validated when a catalogue is loaded, and how to point the workbook at your own photos.

**Prerequisites**
- `00_setup` (the environment); no AWS account, no internet.
"""),
    md("""## What a catalogue is

A shop photographs each garment several times: different models, poses, backgrounds and light. In this
workbook a **catalogue** is a folder of such photos plus one fact per photo: which **item** it shows.
Searching with one photo of an item (the *query*) should return the *other* photos of the same item
before anything else. Because we know the item of every photo, we can measure how often that happens.

The parameters cell below names the catalogue folder. `None` means the default from settings:
the generated sample in `data/sample` (or whatever `WORKBOOK_CATALOG` / `workbook.toml` says)."""),
    code("catalog = None", metadata={"tags": ["parameters"]}),
    code("""from helpers import load_settings, sample, viz
from helpers.catalog import attribute_twins, load_catalog, make_example_folder, summary
from helpers.notebooks import record

settings = load_settings(catalog=catalog)
print("catalogue folder:", settings.catalog)"""),
    md("""## Make the sample catalogue (only if it is missing)

`sample.ensure_sample` draws the sample catalogue when the folder does not exist yet, and leaves any
existing folder alone (so it never touches your photos). Drawing 240 photos takes well under a minute on
two cores; `python -m helpers sample` does the same from a terminal."""),
    code("""sample.ensure_sample(settings.catalog)
loaded = load_catalog(settings.catalog, settings)
table = loaded.table
print(f"layout: {loaded.layout}; {len(table)} images of {table.item_id.nunique()} items; "
      f"{len(loaded.skipped)} skipped")
record("catalog_images", len(table))
record("catalog_items", int(table.item_id.nunique()))"""),
    md("""Every image is opened and checked while the catalogue loads (see *Validation* below); the
count of skipped files is zero for the generated sample. The table has one row per photo:"""),
    code("""table.head()"""),
    md("""`image_id` is unique, `item_id` is the ground truth for search, `image_path` is absolute. The
generated catalogue adds exact `garment_mask_path` and `person_mask_path` masks (white = inside), the
shoot, the model (`figure_id`), the dress's attributes, and the garment's bounding box. Your own
catalogue needs only the first three.

## How the sample was made

The sample is drawn, not downloaded: the machines running this workbook have no internet, and real
shop photos come without ground truth. The drawing follows how shops photograph clothes:

| part | what varies | why |
|---|---|---|
| **item** (a dress) | silhouette (sheath, A-line, fit-and-flare, maxi, mini, slip), neckline, sleeve, length, colour, pattern (solid, stripes, dots, checks, floral, colour-block) | the thing we search for; it must look the same in all its photos |
| **shoot** | background (studio, coloured wall, street), light (brightness, colour temperature, direction), camera (scale, position, tilt, crop), pose, JPEG quality | fixed within a shoot, different between shoots |
| **model** (`figure_id`) | skin tone, hair, body proportions | each item is worn by several models |

Each shoot photographs several items, and each item appears in several shoots. The photos get shading,
fabric folds, soft shadows, sensor noise, blur and JPEG compression so they behave like photos.

The overview and the attribute counts (attributes counted once per item, the rest per photo):"""),
    code("""counts = summary(table)
print(counts["overview"].to_string())
viz.counts_chart(counts, ["background", "silhouette", "pattern", "colour", "sleeve", "skin_tone"])"""),
    md("""The attributes are spread so that no single one identifies an item. Some items are built as
*near twins* of another: the same dress in another pattern, or in another colour. A search that only
matches colour (or only the cut) cannot tell these apart. A few dresses are beige, nude or camel: close to
skin, the hardest case for cutting the garment out of the photo."""),
    code("""twins = attribute_twins(table)
print(twins["differs_in"].value_counts().to_string())
twins.head()"""),
    md("""Each row is a pair of items that differ in exactly one attribute: these pairs are the hard
negatives of the search task.

## One item across its shoots

Here is one item in every shoot it was photographed in: same dress, different background, light,
camera, pose and model."""),
    code("""item = table.item_id.iloc[0]
viz.item_sheet(table, item)"""),
    md("""The dress keeps its colour, print and cut; almost everything else in the photo changes. A
good garment search must look past all of that.

## One shoot across its items

And here is one shoot: different dresses, same backdrop, light, framing and pose."""),
    code("""shoot = table.shoot_id.iloc[0]
viz.shoot_sheet(table, shoot)"""),
    md("""As whole pictures these photos are near copies of each other; only the dress differs, and the
dress covers a minority of the pixels. That is the confounder.

## Measuring the confounder

How alike are whole photos? Below, the average pixel difference of small grey thumbnails for three kinds
of pairs: the same item in another shoot, another item in the same shoot, and neither."""),
    code("""distances = sample.photo_distances(table)
record("distance_same_item", round(float(distances.loc["same item, other shoot", "median"]), 3))
record("distance_same_shoot", round(float(distances.loc["same shoot, other item", "median"]), 3))
distances"""),
    md("""A smaller distance means more alike. Photos of *the same shoot* are far more alike than photos of
*the same item* (compare the two recorded medians above), and photos of the same item are hardly closer
than unrelated photos. So any similarity of whole photos is drawn to "same shoot", while the task asks
for "same item". The rest of the workbook tests the remedy: cut the garment out first, then compare.

## Ground truth: exact masks

Because every pixel was drawn, we know which pixels are the dress and which are the person. Arms, hands,
hair and legs in front of or around the dress are person, not garment:"""),
    code("""viz.mask_sheet(table, n=6)"""),
    md("""Green is the garment mask, red the rest of the person mask. `02_masking` compares the masks
that models produce against these.

## Validation: bad files are skipped with a reason

Real folders contain surprises: empty files from broken downloads, files that are not images, truncated
copies, enormous scans, CMYK or 16-bit images, phone photos stored sideways with an EXIF rotation.
`load_catalog` opens every image with `helpers.images.open_image`, converts odd modes to RGB (transparent
pixels on white), applies EXIF rotation, and lists every file it cannot use in `skipped` with a reason.
It never crashes on one bad file and never drops one silently.

## Your own photos

Put your photos under `data/` in one of these layouts and set `catalog = "data/mine"` in the parameters
cell (or `WORKBOOK_CATALOG=data/mine`, or `catalog = "data/mine"` in `workbook.toml`):

- **one sub-folder per item**: `data/mine/<item_id>/<any name>.jpg`;
- **a folder of images plus a CSV** with columns `image,item_id` (any other columns become metadata);
- **DeepFashion In-shop**, as downloaded: `list_eval_partition.txt` next to `img/...`.

The next cell builds a tiny example of the first layout from two sample items, with one empty file in
it, and loads it:"""),
    code("""import tempfile
example = make_example_folder(table, tempfile.mkdtemp(prefix="my_photos_"))
mine = load_catalog(example, settings)
print(f"layout: {mine.layout}; {len(mine.table)} images of {mine.table.item_id.nunique()} items")
mine.skipped"""),
    md("""The folder names became the item ids, the good photos were loaded, and the empty file is listed
in `skipped` with the reason `empty` and a message that says what to do. Own photos have no ground-truth
masks: the workbook's maskers make them (`02_masking`)."""),
]

write("01_data", cells)
