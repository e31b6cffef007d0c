"""Writes notebooks/02_masking.ipynb. The .ipynb is the source of truth once committed; this
script documents how it was made and can regenerate it (outputs cleared)."""
from nbbuild import code, md, write


cells = [
    md("""# 02 · Masking: finding the garment in a photo

**What you will learn**
- how Amazon Titan Image Generator finds a garment from a word: `INPAINTING` with `maskPrompt` and
  `returnMask`, and what the request body looks like;
- how the offline masker gets a garment mask on this machine, step by step: person → pose → colours → garment;
- how good a mask is, measured as **IoU** against the catalogue's ground-truth masks, per attribute;
- where masks go wrong (the five worst, explained) and why skin-coloured dresses are the hard case;
- how the cache makes a re-run free and lets an interrupted run resume.

**Prerequisites**
- `01_data` (the catalogue). This notebook loads it itself, so it also runs on its own.
- Bedrock track only: model access checked in `00_setup`. The cost is printed before any call.
"""),
    md("""The next cell is the **parameters** cell (`None` = use `workbook.toml`, `WORKBOOK_*` variables,
defaults). `limit` keeps only the first *n* images, for a quick run."""),
    code("""backend = None
masker = None
garment_prompt = None
limit = None""", metadata={"tags": ["parameters"]}),
    code("""from PIL import Image

from helpers import bedrock, load_settings, masking, viz_masks
from helpers.catalog import load_catalog
from helpers.images import open_image
from helpers.notebooks import record

settings = load_settings(backend=backend, masker=masker, garment_prompt=garment_prompt)
table = load_catalog(settings.catalog, settings).table
table = table.head(limit) if limit else table
print(f"backend = {settings.backend}, masker = {settings.effective_masker}, prompt = {settings.garment_prompt!r}, "
      f"{len(table)} images")"""),
    md("""## How Titan finds a garment: INPAINTING + maskPrompt + returnMask

Titan Image Generator has no "segment this" task. It has **inpainting**: repaint part of an image. Which
part is given either as a mask image or as a **`maskPrompt`**, a few words naming what to repaint
("dress"). The model then segments that object itself. With **`returnMask: true`** the response also
carries the mask it used (key `maskImage`, a PNG where **black = the garment**). We keep that mask and
throw the repainted picture away. The image goes in as base64, at most 1,408 px on the longer side
(the bedrock module resizes it and resizes the mask back).

Here is the exact body the workbook would send for the first catalogue image (built offline, nothing is sent):"""),
    code("""first = table.iloc[0]
image = open_image(first.image_path)
body = bedrock.BedrockMasker(settings.replace(backend="bedrock")).request_body(image, settings.garment_prompt)
print(bedrock.preview_body(body))"""),
    md("""`taskType` says what to do, `inPaintingParams.maskPrompt` names the garment, `text` is what to paint
into it (ignored by us), and `imageGenerationConfig` asks for one standard-quality image. One call
costs about one image generation (`mask_price_usd` in settings). The next cell makes the real call,
and only when the backend is `bedrock`; on the offline track it says so and does nothing."""),
    code("""if settings.backend == "bedrock":
    titan = masking.get_masker(settings.replace(masker="bedrock"))
    titan_mask = titan.mask(image, settings.garment_prompt, image_id=first.image_id)
    display(Image.fromarray(viz_masks.overlay(image, titan_mask)))
else:
    print("offline backend: no Bedrock call made (set backend='bedrock' to call Titan)")"""),
    md("""## The offline masker, step by step

Most accounts can no longer start using Titan's image models (see `00_setup`), so the workbook's
default is a masker that runs here, from models that come with their weights inside a PyPI package
(mediapipe 0.10.21) plus image processing:

1. **Person and pose.** mediapipe Pose returns 33 body landmarks (nose, shoulders, elbows, wrists,
   hips, knees, ankles ...) and a person mask. When it finds no pose (it often fails on drawn figures),
   selfie segmentation gives the person and the body parts are estimated from the silhouette.
2. **Colour references, sampled where the body says they must be:** skin on the face, hair on the
   crown, shoes at the feet, background just outside the person, and the garment's palette in the
   **torso core** between shoulders and hips (k-means, so patterns keep all their colours).
3. **Garment** = person pixels not closer to skin, hair, shoes or background than to the garment
   palette, minus the head, keeping what is connected to the torso. In the gaps between an arm and the
   torso and between the legs, which segmenters call "person", a pixel is background when its colour
   matches the wall *right behind it* (the person inpainted away from the photo): a mustard dress on a
   yellow wall matches the wall's colours in general, but not the wall behind each pixel.
4. **Prompt:** "dress" keeps neckline to hem; "top" above the waist; "skirt"/"trousers" below it."""),
    code("""local = masking.LocalMasker()
print(local, "| supported prompts:", masking.SUPPORTED_PROMPTS)
steps = local.explain(image, settings.garment_prompt if settings.garment_prompt in masking.PROMPT_ALIASES else "dress")
fig = viz_masks.show_steps(steps, title=first.image_id)"""),
    md("""Panel 2 shows the body the masker worked with (yellow limbs, orange torso, cyan head). Panel 3 shows
what was taken away: grey background at the outline, skin (arms, legs, neck), hair, shoes; the magenta
patch is the torso core whose colours define "garment". Panel 4 is the result.

Any other prompt is refused with a message, never answered with a dress:"""),
    code("""try:
    local.mask(image, "handbag")
except masking.MaskError as err:
    print(f"{err.reason}: {err}")"""),
    md("""## The hard case: skin-coloured dresses

A beige, nude or camel dress has the colour of some models' skin, so step 3 would cut the dress into
pieces. The masker notices this when most of the torso core is as close to the face's colour as skin
is, and then lets **geometry** decide: the garment is the person between the neckline and the **hem**
(the row below the hips where the silhouette narrows most sharply, skirt to legs), minus capsules along
the arms (shoulder → elbow → wrist from the pose) and the head. Geometry is rougher than colour, so
these images score lower, but the mask stays a dress rather than fragments. Here is the catalogue's
first skin-toned dress, if this catalogue has one:"""),
    code("""skin_toned = table[table["colour"].isin(["beige", "nude", "camel"])] if "colour" in table.columns else table.head(0)
if len(skin_toned):
    row = skin_toned.iloc[0]
    hard = local.explain(open_image(row.image_path), "dress")
    print(f"{row.image_id}: {row.colour} dress, {row.skin_tone} skin -> decided by "
          f"{'geometry' if hard['skin_like'] else 'colour (the shades differ enough)'}")
    fig = viz_masks.show_steps(hard, title=f"{row.image_id} ({row.colour})")
else:
    print("no skin-toned dress in this catalogue")"""),
    md("""## Masking the whole catalogue

`mask_catalog` prints the cost line first (local masks cost nothing), reads cached masks, and runs the
rest in a pool of `settings.workers` processes (local) or `settings.concurrency` threads (Bedrock).
Each mask is written to the cache the moment it is done: interrupt the cell and run it again, and it
continues where it stopped. Images it cannot mask become rows of `failures`; the batch goes on."""),
    code("""run = masking.mask_catalog(table, settings)
print(run)
record("masks", len(run.masks))
run.failures"""),
    md("""Every image got a mask (the failure table is empty when the prompt matched a garment everywhere).
Now run the same batch again and watch the counts: this is what a re-run after an interruption does."""),
    code("""again = masking.mask_catalog(table, settings, progress=False)
print(f"second run: {again.calls} masker calls, {again.cached} masks from the cache, {again.seconds:.2f} s "
      f"(first run {run.seconds:.2f} s)")
record("second_run_calls", again.calls)"""),
    md("""The second run made no masker call: the cache key is the image's bytes, the masker's `model_id`
and the prompt, so a changed image, model or prompt would be computed afresh, and nothing else is.

## How good are the masks? IoU against the ground truth

The generated catalogue comes with the true garment mask of every image. **IoU** (intersection over
union) is the overlap of the predicted and true masks divided by their union: 1 is perfect, 0.5 means
large errors. We also report *precision* (share of the mask that is garment), *recall* (share of the
garment found) and *bg_share* (share of the mask outside the person: it must stay at a few percent)."""),
    code("""scores = masking.evaluate_masks(run, table)
summary = masking.summarize_iou(scores)
overall = summary.iloc[0]
print(f"{len(scores)} images: mean IoU {overall.mean_iou:.3f}, median {overall.median_iou:.3f}, "
      f"worst {overall.min_iou:.3f}; on average {overall.mean_bg_share:.1%} of a mask is background, "
      f"at most {scores.bg_share.max():.1%}")
record("mean_iou", round(float(overall.mean_iou), 4))
record("median_iou", round(float(overall.median_iou), 4))
summary.round(3)"""),
    md("""The first row is the whole catalogue; the rows below split it by attribute. The histogram shows
how the per-image IoU is spread: a tall bar near the right end is what a good masker looks like."""),
    code("""fig = viz_masks.iou_histogram(scores)"""),
    md("""Read the table by attribute: the rows with the lowest mean IoU are the weak cases. Skin-toned
colours (camel, beige, nude) are usually among them, for the reason above; busy patterns whose colours
do not all appear in the torso core (checks, colour-block) come next. Background kind matters little,
because the person mask already separates the figure from the backdrop.

## The five worst masks

Green = garment found, red = taken but not garment, blue = garment missed."""),
    code("""fig = viz_masks.show_worst(scores, run.masks, table, n=5)
for _, rec in scores.nsmallest(5, "iou").iterrows():
    print(f"{rec.image_id}: IoU {rec.iou:.2f} - {viz_masks.diagnose(rec)}")"""),
    md("""Each line says what went wrong, computed from the numbers, not typed by hand. Missed garment (blue)
usually means a part of the dress whose colour the torso core did not contain and that looked like
skin or background (a shaded hem, a second block colour), or a skin-toned dress where the hem was
guessed too high. Extra pixels (red) are usually background the person mask bridged between the legs
or between an arm and the torso that the wall-behind test could not separate, or arms that crossed the dress. The next notebook, `03_cutting`, turns these masks into cut-outs;
`06_metrics` measures how much mask quality matters for search, with the reference masks as the upper bound."""),
]

write("02_masking", cells)
