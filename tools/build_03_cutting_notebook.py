"""Writes notebooks/03_cutting.ipynb. The .ipynb is the source of truth once committed; this
script documents how it was made and can regenerate it (outputs cleared)."""
from nbbuild import code, md, write


cells = [
    md("""# 03 · Cutting: from a mask to a garment cut-out

**What you will learn**
- the three cut-out forms (on white, on transparent, square crop) and what each one is for;
- why the embedder gets the **square crop**: the garment fills the frame, the room and the model do not;
- what softening the mask edge (dilation, feathering) does, seen up close;
- that an empty mask is an explicit outcome ("no garment found"), never a blank picture.

**Prerequisites**
- `02_masking` (masks). This notebook asks the cached masking step for them, so it also runs on its own.
"""),
    md("""The next cell is the **parameters** cell (`None` = use `workbook.toml`, `WORKBOOK_*` variables,
defaults). `limit` keeps only the first *n* images."""),
    code("""backend = None
masker = None
garment_prompt = None
limit = None""", metadata={"tags": ["parameters"]}),
    code("""import numpy as np

from helpers import cutting, load_settings, masking, viz_masks
from helpers.cache import Cache
from helpers.catalog import load_catalog
from helpers.images import open_image
from helpers.notebooks import record

settings = load_settings(backend=backend, masker=masker, garment_prompt=garment_prompt)
table = load_catalog(settings.catalog, settings).table
table = table.head(limit) if limit else table
run = masking.mask_catalog(table, settings, progress=False)  # cached: free after 02_masking
print(f"masker = {run.model_id}: {len(run.masks)} masks, {len(run.failures)} failures")"""),
    md("""## Three forms of the same garment

- **On white**, full size: what a shop page shows; good for looking at masks and comparing by eye.
- **On transparent** (RGBA PNG): the alpha channel *is* the mask, so the cut-out can be laid on any
  background (shown here on a checkerboard) and the mask travels with the picture.
- **Square crop**: the tight box around the garment plus a small margin, padded with white to a square
  and scaled to the embedder's input size. This is what gets embedded: the garment fills the frame,
  so the vector describes the dress, not the backdrop, the light or where the model stood."""),
    code("""image_id = next(iter(run.masks))
row = table.set_index("image_id").loc[image_id]
image, mask = open_image(row.image_path), run.masks[image_id]
fig = viz_masks.show_forms(image, mask, size=224)
square = cutting.square_crop(image, mask)
print(f"{image_id}: garment covers {mask.mean():.1%} of the photo, "
      f"{1 - (np.asarray(square) >= 250).all(axis=2).mean():.1%} of its square crop")"""),
    md("""The two percentages show what the square crop does: the garment's share of the pixels goes up, and
every other pixel of the crop is plain white instead of backdrop, floor, skin and hair. An embedder sees
every pixel, so what is *not* garment in its input ends up in the vector too.

## Edge treatment

A mask edge is a staircase of pixels, and a masker's outline is often a pixel or two inside or outside
the true one. **Dilation** grows the mask by a few pixels (recovers a shaved-off border, but adds a thin
ring of whatever was next to the garment); **feathering** blurs the edge over a few pixels so the cut-out
has no jagged steps (an embedder may read those as texture). A close-up of the left outline:"""),
    code("""treatments = [cutting.EdgeTreatment(), cutting.EdgeTreatment(dilate=3),
              cutting.EdgeTreatment(feather=4), cutting.EdgeTreatment(dilate=2, feather=3)]
fig = viz_masks.show_edges(image, mask, treatments)
for edge in treatments:
    alpha = cutting.soft_alpha(mask, edge)
    print(f"dilate {edge.dilate}, feather {edge.feather:g}: effective area {alpha.sum() / mask.sum():.3f} x the mask, "
          f"{((alpha > 0.02) & (alpha < 0.98)).sum():,} soft edge pixels")"""),
    md("""Dilation adds area (a ring around the garment, printed as the effective area above); feathering keeps
the effective area about the same but turns the hard edge into a soft band of partly transparent pixels. Both are small effects next to the choice between
full photo and cut-out; the pipeline uses a hard edge by default, and the options are here to try.

## When there is no garment

A masker can find nothing (a photo without a person, a prompt that matched nothing). Cutting then stops
with an explicit `NoGarment` (reason `no_garment`) instead of returning a blank white square, which
would otherwise be embedded and make every empty image look alike:"""),
    code("""try:
    cutting.cut(image, np.zeros_like(mask), "square")
except cutting.NoGarment as err:
    print(f"{err.reason}: {err}")"""),
    md("""## Cutting the whole catalogue

`cut_catalog` cuts every image that has a mask and returns the cut-outs plus a failures table
(`no_mask` when masking failed, `no_garment` for an empty mask). With the cache the square crops are
stored as PNG, so the embedding step and a re-run read them instead of cutting again."""),
    code("""cuts = cutting.cut_catalog(table, run.masks, "square", size=224, cache=Cache(settings.cache_dir), settings=settings)
print(f"{len(cuts.cutouts)} cut-outs, {len(cuts.failures)} failures, {cuts.cached} from the cache, {cuts.seconds:.2f} s")
record("cutouts", len(cuts.cutouts))
fig = viz_masks.show_grid(cuts.cutouts, n=8)
cuts.failures"""),
    md("""Every cut-out is a 224 x 224 square with the dress in the middle and nothing of the shoot around it.
The next notebook, `04_embedding`, turns the full photos and these cut-outs into vectors and shows
how differently the two kinds of vectors group the catalogue."""),
]

write("03_cutting", cells)
