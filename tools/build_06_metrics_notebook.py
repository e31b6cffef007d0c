"""Writes notebooks/06_metrics.ipynb. The .ipynb is the source of truth once committed; this
script documents how it was made and can regenerate it (outputs cleared)."""
from nbbuild import code, md, write


cells = [
    md("""# 06 · Metrics: does the garment cut-out really find the same garment better?

**What you will learn**
- how to *measure* a search with ground truth: leave-one-out queries, Recall@k, mAP, MRR, nDCG@10;
- how sure we can be: a paired bootstrap confidence interval and a Wilcoxon signed-rank test;
- *why* the garment cut-out wins: whole-photo search is pulled to photos from the **same shoot**;
- why the original demo's number (mean similarity of the top 3 results) cannot tell a good search from a bad one;
- where garment search still fails, and what went wrong there.

**Prerequisites**
- `02_masking` to `05_indexing` (masks, cut-outs, embeddings, index). This notebook recomputes every step
  through the cache, so it also runs on its own; with a warm cache it takes seconds.
"""),
    md("""## The question

The idea behind this workbook came from a demo that searched a handful of fashion photos two ways, with the
whole photo and with the garment cut out, and compared them by the **mean cosine similarity of the top 3
results**. The garment search had the higher number, so it was declared better. But a higher similarity
is not a better answer: nobody checked whether the results showed *the same garment*.

Here we check. The catalogue has ground truth (which photos show the same item), so every answer can be
marked right or wrong. The question: **does searching with the garment cut out return the same garment more
often than searching with the whole photo, and by how much, with what uncertainty?**

The next cell is the **parameters** cell (`None` = use `workbook.toml`, `WORKBOOK_*` variables, defaults)."""),
    code("""backend = None
masker = None
garment_prompt = None
limit = None""", metadata={"tags": ["parameters"]}),
    code("""import pandas as pd

from helpers import load_settings, metrics, metrics_viz, pipeline
from helpers.notebooks import record

settings = load_settings(backend=backend, masker=masker, garment_prompt=garment_prompt)
print(f"backend = {settings.backend}, masker = {settings.effective_masker}, catalogue = {settings.catalog}")"""),
    md("""## The protocol

- **Leave-one-out.** Every image is a query against *all the other* images. The **relevant** answers are
  the other photos of the same item (other shoots, other figures, other poses). An item with a single photo
  has no relevant answer: its query is excluded from the averages and counted, but its photo stays in the
  gallery as a distractor.
- **Exact search.** Similarities come from the full cosine-similarity matrix computed with numpy, so the
  numbers do not depend on the approximate index. (The pipeline also checks that ChromaDB's first answers
  give the same Recall@1.)
- **Metrics.** *Recall@k*: the share of queries with at least one right answer among the first k (k = 1 is
  "the first result is the same garment"). *MRR*: the mean of 1 / rank of the first right answer. *mAP*: the
  mean of each query's average precision, which rewards putting **all** the right answers high. *nDCG@10*:
  the same idea with a logarithmic discount, over the first 10 results.
- **Ties** (two answers with exactly the same similarity) are broken *pessimistically*: a wrong answer is
  ranked before a right one. A search that gives everything the same vector cannot look good by luck.
- **Three conditions** on the same images: `full` (the whole photo), `garment` (cut out with the configured
  masker), `garment_reference` (cut out with the catalogue's true masks: the best any masker could do).

`run_pipeline` loads the catalogue, masks, cuts, embeds both views and indexes them; `evaluate` computes
everything below and returns it as the `metrics.json` document."""),
    code("""result = pipeline.run_pipeline(settings, limit=limit, progress=True)
doc = pipeline.evaluate(result)
print(doc["catalog"])
print(f"embedder {doc['embedder']} ({doc['dim']}-d), masker {doc['masker']}")
print("images without a vector:", {c: (m or {}).get("failed_images") for c, m in doc["conditions"].items()})"""),
    md("""`evaluated_images` is the number of photos every condition could embed; the conditions are compared on
exactly these queries and this gallery. An image whose garment could not be found would be listed as a
failure above instead of silently dropped.

## The table

One row per condition, every metric between 0 and 1 (higher is better), `queries` = how many were averaged."""),
    code("""table = pipeline.summary_table(doc)
table.style.format("{:.3f}", subset=table.columns[:-1]).format("{:.0f}", subset=["queries"])"""),
    md("""The number the workbook is about is the difference in Recall@1 between garment and full-photo
search, with its uncertainty:"""),
    code("""d = doc["delta_recall@1"]
print(f"Recall@1: full {doc['conditions']['full']['recall@1']:.3f}, garment {doc['conditions']['garment']['recall@1']:.3f}")
print(f"garment - full = {d['value']:+.3f}, 95% CI {d['ci95'][0]:+.3f} to {d['ci95'][1]:+.3f} "
      f"(paired bootstrap, {d['rounds']} rounds, seed {d['seed']})")
print(f"Wilcoxon signed-rank test on per-query AP, garment vs full: p = {doc['wilcoxon_p_ap']:.2g}")
record("recall@1_full", doc["conditions"]["full"]["recall@1"])
record("recall@1_garment", doc["conditions"]["garment"]["recall@1"])
record("delta_recall@1", d["value"])
record("delta_recall@1_ci95", d["ci95"])
record("wilcoxon_p_ap", doc["wilcoxon_p_ap"])"""),
    md("""### With and without the embedder's colour part

The offline embedder is two parts in one vector: a CNN (shape, texture, pattern) and a small colour
histogram (hue and saturation without lightness), weighted 70 / 30. The colour part was added because the CNN
alone could barely tell a pink dress from an ivory one of the same cut. It helps garment search. It also
*hurts* whole-photo search, because most of a photo's colour is its backdrop. So part of the gap above is
the colour part's doing. The table shows both embedders on the same images; the CNN-only row comes from the
first 1,280 numbers of the same vectors."""),
    code("""ablation = pipeline.colour_ablation_table(doc)
if ablation is not None:
    record("recall@1_full_cnn_only", doc["cnn_only"]["conditions"]["full"]["recall@1"])
    record("delta_recall@1_cnn_only", doc["cnn_only"]["delta_recall@1"]["value"])
ablation.round(3).T if ablation is not None else print("not the offline embedder: no separable CNN part")"""),
    md("""Read the two `garment - full` values: without the colour part the garment search still wins by a
wide margin, so the cut-out's advantage does not depend on it; with it the gap grows, because colour
sharpens garment search and muddles whole-photo search. Titan Multimodal on Bedrock has its own sense of
colour, so expect the bigger gap there too. (`None` = this embedder has no separable part.)

**What the confidence interval means here.** The catalogue is one sample of the photos one could
take. The bootstrap re-draws the set of queries 2,000 times (with replacement), and for each draw takes the
*same* queries from both conditions (a *paired* comparison: some garments are simply harder, and that
cancels out). The interval holds the middle 95 % of the re-drawn differences: had we photographed another
catalogue like this one, the difference would land in it about 95 times out of 100. If the whole interval is
above 0, the garment search is better beyond what the luck of the sample explains. The Wilcoxon test asks
the same question of the per-query average precision, without assuming any distribution: a small p means a
difference this consistent would be very unlikely if both searches were equally good.

## The picture

Bars are each condition's mean, whiskers its own 95 % bootstrap interval."""),
    code("""res = result.retrievals()
metrics_viz.bars_with_ci(metrics.intervals(res, ("recall@1", "recall@5", "map", "mrr", "ndcg@10")));"""),
    md("""Recall@k as k grows: how many results must a shopper look at before the same dress appears?"""),
    code("""curves = {c: r.recall_curve(20) for c, r in res.items()}
metrics_viz.recall_curves(curves);
print({c: {f"recall@{k}": round(float(v[k - 1]), 3) for k in (1, 3, 10)} for c, v in curves.items()})"""),
    md("""Read the gap at k = 1 (the first answer) and how fast each curve climbs: a search that needs ten
results to show the right dress is a worse search even if it gets there in the end.

## The mechanism: same shoot, different dress

The catalogue was shot like a real one: each shoot (backdrop, light, camera) photographs several items, and
each item appears in several shoots. A whole-photo embedding sees the backdrop and the light as much as the
dress. So when whole-photo search is wrong, *which* wrong photo does it pick? The table counts, for each
condition, the wrong first answers that come from the query's own shoot, and the share expected by chance
if wrong answers were drawn at random."""),
    code("""shoot_errors = doc.get("same_shoot_errors") or {}
print(pd.DataFrame(shoot_errors).T if shoot_errors else "no shoot_id column in this catalogue: nothing to count")
metrics_viz.same_shoot_bars(shoot_errors);
record("same_shoot_fraction_full", shoot_errors.get("full", {}).get("fraction"))
record("same_shoot_fraction_garment", shoot_errors.get("garment", {}).get("fraction"))"""),
    md("""Compare the `fraction` column with `chance`: when whole-photo search's wrong answers come from the
same shoot far more often than chance, the backdrop and light, not the dress, decided the answer. Cutting
the garment out removes most of that signal, so garment search makes fewer mistakes, and fewer of its
remaining mistakes are "same shoot". What is left of the shoot inside the cut-out is its **light** on the
fabric: a colour cast shifts every colour a little, which the embedder's coarse colour bins are built to absorb.

## Per attribute

The same Recall@1 broken down by the catalogue's attributes. Where does whole-photo search suffer most, and
which garments stay hard even when cut out?"""),
    code("""by = pipeline.breakdowns(result)
metrics_viz.breakdown_bars(by.get("background"), "Recall@1 by background kind");
pipeline.breakdown_table(by)"""),
    md("""Backgrounds: compare the rows. When whole-photo search is low on *every* kind of backdrop, the
problem is not one difficult background: every photo carries its own shoot, whatever it looks like. Colours and
patterns: items that differ *only* in colour (the catalogue has such pairs on purpose) are where a CNN
trained on ImageNet struggles, because it cares more about texture and shape than about hue; the colour part
of the embedder is there for them. The lowest `garment` values in the table show what stays hard.

## The demo's statistic, side by side

The demo's number is the mean cosine similarity of each query's three nearest results."""),
    code("""seed = doc["seed_statistic"]
recall1 = {c: doc["conditions"][c]["recall@1"] for c in seed}
print("mean top-3 similarity:", {c: round(v, 3) for c, v in seed.items()})
print("Recall@1:             ", {c: round(v, 3) for c, v in recall1.items()})
metrics_viz.seed_vs_recall(seed, recall1);
record("seed_statistic_full", seed["full"])
record("seed_statistic_garment", seed["garment"])"""),
    md("""A sharper test of the number: split each condition's queries by whether the first answer was
**right** or **wrong**, and compare their mean top-3 similarity."""),
    code("""split = pd.DataFrame(doc["seed_statistic_by_outcome"]).T
split["gap"] = split["right"] - split["wrong"]
print(split.round(3))
metrics_viz.seed_by_outcome(split);
record("seed_full_right", split.loc["full", "right"])
record("seed_full_wrong", split.loc["full", "wrong"])"""),
    md("""The `gap` column is how much higher right answers score than wrong ones. Look at whole-photo
search first: its wrong answers are mostly photos from the same shoot, and they look *as similar* as the
right ones, so a gap near zero means the number carries no information about correctness there. Where a
gap exists, the values still overlap across conditions (compare one condition's `wrong` with another's
`right`): no single similarity level separates right answers from wrong ones.

Why this number cannot tell a good search from a bad one, even when it happens to point the same way:

- it measures how **close** the nearest neighbours are, never whether they are the **right** garment. Two
  photos from the same shoot share a backdrop and a light, so their vectors are close even when the dresses
  differ: the statistic goes *up* while recall goes *down*;
- a model that maps every photo to nearly the same vector scores close to 1.0 with chance-level recall
  (`tests/test_metrics.py` builds exactly such a case);
- cut-outs on white and full photos (or two different embedders) have different similarity *scales*: every
  cut-out shares a white background, which raises all its similarities whether the answers are right or not.

Only labels can say which search is better. That is why this notebook exists.

## Where garment search loses

The queries where whole-photo search puts the same item first and garment search does not, worst first,
with a guess at the cause from the mask quality and the attributes the wrong answer shares with the query."""),
    code("""losses = pipeline.garment_losses(result)
print(f"{len(losses)} of {doc['conditions']['garment']['queries']} queries: full right at rank 1, garment wrong")
print(losses["diagnosis"].str.split(":").str[0].str.replace(r" \\(IoU.*", "", regex=True).value_counts().to_string())
losses.head(8)[["image_id", "item_id", "garment_top1_item", "garment_rank", "query_iou", "shared", "diagnosis"]]"""),
    md("""Each row of the gallery: the query photo with its garment mask outlined, the cut-out that was
embedded, the wrong first answer of garment search (its cut-out) and the right first answer of whole-photo
search."""),
    code("""metrics_viz.failure_gallery(pipeline.gallery_rows(result, losses, n=5));"""),
    md("""What goes wrong, in the cases above: either the mask is poor (low IoU: part of the dress missing or
skin and background included, so the cut-out shows a different shape), or the mask is fine and the wrong
answer is a **look-alike**: with the colour part, mostly a different item of the *same* colour whose cut or
pattern differs a little. Better masks fix the first kind; the second needs an embedder that knows fashion
(Titan Multimodal on Bedrock, or a fashion-trained model) rather than ImageNet textures.

## How much would perfect masks add?"""),
    code("""print(pipeline.reference_note(doc))
record("mask_iou_mean", (doc["mask_iou"] or {}).get("mean"))
record("recall@1_reference", (doc["conditions"]["garment_reference"] or {}).get("recall@1"))"""),
    md("""If the interval for perfect masks includes 0, the masker is already good enough for this embedder:
the remaining errors are the embedder's (look-alikes), not the mask's.

## Saving the numbers

The document printed piece by piece above is written to the run folder as `metrics.json` (the same file
`python -m helpers run` writes), so the numbers in this notebook and on the command line are one set."""),
    code("""path = pipeline.write_metrics(doc, pipeline.default_run_dir(settings.run_dir))
print(f"wrote {path}")
print("timings (s):", doc["timings_s"])"""),
    md("""## Conclusion

In one sentence, from the numbers above:"""),
    code("""print(pipeline.conclusion(doc))"""),
    md("""That sentence is the workbook's claim, measured with ground truth instead of asserted from
similarity scores; `metrics.json` in the run folder holds every number behind it. The next notebook,
`07_search`, puts both searches side by side in an app, so you can try the difference on a query of your own."""),
]

write("06_metrics", cells)
