"""Closing sections per notebook (see tools/closing_sections.py). Solutions run in the full
notebooks (make run, make test), so they stay short, offline and cheap."""

CONTENT = {
    "00_setup": {
        "learned": [
            "the workbook's claim: embed the garment cut-out, not the whole photo, and measure it with ground truth",
            "the seven steps (data, masking, cutting, embedding, indexing, metrics, search) and one module per step",
            "settings come from defaults < `workbook.toml` < `WORKBOOK_*` < notebook parameters",
            "the offline backend needs no account; the Bedrock backend shows its cost before it spends",
        ],
        "questions": [
            "Which two backends does the workbook have, and which one is the default?",
            "In what order are `workbook.toml`, `WORKBOOK_*` variables and notebook parameters applied?",
            "Why do credentials never appear in the settings?",
            "Which Bedrock call dominates the estimated cost of a run, and why does a second run cost nothing?",
            "Where do executed notebooks go, and what does `runs/latest` point at?",
        ],
        "exercises_intro": "Try these before looking at the solution cell below each one.",
        "exercises": [
            ("Make a copy of the settings for the Bedrock track with 256-dimensional Titan embeddings and "
             "print both backends and dimensions. (Nothing is called: settings are just values.)",
             "# Solution: a copy of `settings` for Bedrock with 256-d embeddings (hint: `settings.replace`), then print both\n"
             "bedrock_settings = settings.replace(backend=\"bedrock\", embed_dim=256)\n"
             "print(settings.backend, settings.embed_dim, \"->\", bedrock_settings.backend, bedrock_settings.embed_dim)"),
            ("What would a run over a 1,000-image catalogue cost in Titan masks if 400 masks were already "
             "cached? Use `cost.estimate`.",
             "# Solution: the estimate for 1,000 images with 400 cached, at the settings' mask price (hint: `cost.estimate`)\n"
             "print(cost.estimate(1000, 400, settings.mask_price_usd, \"Titan masks\"))"),
        ],
        "after": "The settings object is shared by every notebook; change it once, and the whole pipeline follows.",
    },
    "01_data": {
        "learned": [
            "a catalogue is photos plus one label per photo (the item), which is what makes retrieval measurable",
            "the sample is drawn in shoots: one shoot photographs several items, one item appears in several shoots",
            "whole photos of the same shoot are more alike than photos of the same item: the confounder",
            "`load_catalog` reads generated, folder, CSV and DeepFashion layouts and skips bad files with a reason",
        ],
        "questions": [
            "What is the difference between an *item* and an *image* in the catalogue?",
            "Which three things does a shoot fix for every photo taken in it?",
            "Which pairs of photos had the smallest median pixel distance, and why does that matter for search?",
            "Why does the sample contain pairs of items that differ in only one attribute?",
            "What happens to an empty or truncated file when a catalogue is loaded?",
            "Which columns does your own catalogue need at the least?",
        ],
        "exercises_intro": "Try these before looking at the solution cell below each one.",
        "exercises": [
            ("Show another item across all its shoots, for example the item of the photo in the middle of the table.",
             "# Solution: a contact sheet of the item in the middle of the table (hint: `viz.item_sheet`)\n"
             "viz.item_sheet(table, table.item_id.iloc[len(table) // 2])"),
            ("How many *items* are camel or ivory, the colours closest to skin? Count items, not photos.",
             "# Solution: the number of distinct items per colour, for camel and ivory only (hint: `isin`, `groupby`, `nunique`)\n"
             "table[table.colour.isin([\"camel\", \"ivory\"])].groupby(\"colour\").item_id.nunique()"),
        ],
        "after": "Keep the confounder in mind: every later notebook asks whether a method looks at the dress or at the shoot.",
    },
    "04_embedding": {
        "learned": [
            "an embedding turns an image into a fixed-length vector; similar images get vectors with a high cosine",
            "the local embedder is EfficientNet-Lite0 run by ONNX Runtime (1280 numbers) plus a 64-bin colour histogram; Bedrock's is Titan Multimodal (256-1024)",
            "vectors are cached by content, so a second run makes no model calls",
            "in the 2-D maps, full-photo vectors group by shoot while cut-out vectors group by item",
        ],
        "questions": [
            "How many numbers does the local embedder return per image, and why is each vector's length 1?",
            "Why does the workbook run the network with ONNX Runtime instead of PyTorch?",
            "How many model calls did the second embedding run make, and why?",
            "For the example query, which view put more of the query's own item among the 5 nearest images?",
            "What does the neighbour-share table measure, and which view is drawn to the same shoot?",
        ],
        "exercises_intro": "Try these before looking at the solution cell below each one.",
        "exercises": [
            ("Mirror the first photo left to right, embed it, and compute its cosine similarity to the original "
             "photo's vector. (The vectors are L2-normalised, so the cosine is a dot product.)",
             "# Solution: embed the mirrored photo and compare it with `vector` (hint: `Image.Transpose.FLIP_LEFT_RIGHT`, `@`)\n"
             "mirrored = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)\n"
             "print(f\"cosine(original, mirrored) = {float(embedder.embed([mirrored])[0] @ vector):.3f}\")"),
            ("Try a 256-d Titan embedding: build the request body Titan Multimodal Embeddings would receive for "
             "`embed_dim = 256` (nothing is sent; on the Bedrock track set `embed_dim = 256` in the parameters).",
             "# Solution: the Titan request body for a 256-d embedding (hint: `bedrock.embed_request`)\n"
             "from helpers import bedrock\n"
             "print(bedrock.embed_request(image_b64=\"<base64 image>\", dim=256))"),
        ],
        "after": "Vectors alone do not search: `05_indexing` puts them into ChromaDB.",
    },
    "05_indexing": {
        "learned": [
            "the index keeps two collections, garment-only and full-image, named after the embedder and dimension",
            "cosine space, our own vectors (never Chroma's default embedding function), metadata for `where` filters",
            "re-indexing is idempotent: unchanged records are left alone, changed ones replaced",
            "HNSW's `ef_search` trades latency for recall; the workbook sets it so recall@10 is at least 0.99",
            "the same code talks to a ChromaDB server, which is how a team shares one index",
        ],
        "questions": [
            "Why must vectors from different embedders or dimensions never share a collection?",
            "Why does the workbook pass `embedding_function=None` and never `query_texts=`?",
            "What did the second `index_catalog` call add or update, and why?",
            "In garment mode, what is searched: the query photo or something else?",
            "What recall@10 did Chroma's default-like small `ef` give, and what did the tuned value give?",
            "How would a team of five share one index?",
        ],
        "exercises_intro": "Try these before looking at the solution cell below each one.",
        "exercises": [
            ("Filter by the query's pattern instead of its colour, and show the garment results.",
             "# Solution: a garment search filtered on the query's pattern (hint: the `where=` argument of `search`)\n"
             "by_pattern = search(query.image_path, mode=\"garment\", k=5, settings=settings,\n"
             "                    where={\"pattern\": query.pattern}, exclude=[query_id])\n"
             "by_pattern[\"garment\"][[\"rank\", \"item_id\", \"pattern\", \"score\"]]"),
            ("Search the full-image collection with k = 10 and count how many results come from the query's "
             "own shoot. What does that tell you?",
             "# Solution: a full-image search with k = 10, then count results whose shoot_id is the query's\n"
             "full10 = search(query.image_path, mode=\"full\", k=10, settings=settings, exclude=[query_id])[\"full\"]\n"
             "print(int((full10.shoot_id == query.shoot_id).sum()), \"of\", len(full10), \"from shoot\", query.shoot_id)"),
        ],
        "after": "An index answers queries; it does not say whether the answers are right. `06_metrics` measures that.",
    },
    "06_metrics": {
        "learned": [
            "retrieval is measured leave-one-out against ground truth: Recall@k, mAP, MRR, nDCG@10",
            "a paired bootstrap over queries gives a 95% confidence interval for garment minus full",
            "most of whole-photo search's wrong answers come from the query's own shoot: that is the mechanism",
            "the demo's mean top-3 similarity cannot tell right answers from wrong ones",
        ],
        "questions": [
            "What counts as a relevant result for a query, and which queries are left out?",
            "What does the 95% confidence interval of the Recall@1 difference mean, in one sentence?",
            "What fraction of full-photo top-1 errors were same-shoot, and what does that say about the cause?",
            "Why can a higher mean top-3 similarity come with a lower recall?",
            "How did the ground-truth (reference) masks compare with the local masker, and what does that bound?",
            "Name one failure from the gallery and its cause.",
        ],
        "exercises_intro": "Try these before looking at the solution cell below each one.",
        "exercises": [
            ("Count the queries that garment search gets right at rank 1 while full search gets them wrong, and "
             "the reverse. (`res[c].per_query` has a `hit@1` column per query.)",
             "# Solution: a table of hit@1 per query for full and garment, then the two counts\n"
             "hits = pd.DataFrame({c: res[c].per_query.set_index(\"image_id\")[\"hit@1\"] for c in (\"full\", \"garment\")})\n"
             "print(\"garment right, full wrong:\", int((hits.garment.astype(bool) & ~hits.full.astype(bool)).sum()))\n"
             "print(\"full right, garment wrong:\", int((hits.full.astype(bool) & ~hits.garment.astype(bool)).sum()))"),
            ("Break the masker on purpose: re-run this notebook with `masker = \"reference\"` and then with the "
             "local masker and compare Recall@1. Here, compute the difference between the two garment conditions "
             "already in `doc`.",
             "# Solution: the reference-mask Recall@1 minus the local-mask Recall@1, read from `doc`\n"
             "ref = (doc[\"conditions\"][\"garment_reference\"] or {}).get(\"recall@1\")\n"
             "print(\"reference - local Recall@1:\", None if ref is None else round(ref - doc[\"conditions\"][\"garment\"][\"recall@1\"], 3))"),
        ],
        "after": "The numbers are in; `07_search` lets you see the difference one query at a time.",
    },
    "07_search": {
        "before": [
            ("## Clean-up: what this workbook created, and how to remove it\n\n"
             "Before you leave, look at what the workbook left behind: the ChromaDB collections, the cache on "
             "disk, and the Bedrock calls it made (with their cost; zero on the offline track).",
             "from helpers import environment\n\n"
             "created = environment.created_resources(settings)\n"
             "calls = created[\"bedrock_calls\"]\n"
             "print(f\"Bedrock calls made: {int(calls.calls.sum())}, about ${calls.dollars.sum():.2f}\")\n"
             "print(f\"cache on disk: {created['cache'].MB.sum():.1f} MB\")\n"
             "display(created[\"collections\"])\n"
             "created[\"cache\"]"),
            ("Two collections (garment and full image) per embedder, a cache of masks, cut-outs and vectors, and "
             "a ledger of Bedrock calls. Nothing above costs money while it sits on disk, and nothing lives in "
             "your AWS account: Bedrock keeps no resource of yours after a call. Here is how to remove it all "
             "(nothing is deleted by this cell):",
             "print(environment.cleanup_instructions(settings))"),
        ],
        "learned": [
            "the search app is a thin layer of widgets over the same `search` function the CLI uses",
            "in garment mode the query photo itself is masked and cut out before it is embedded",
            "side by side, garment results show the query's item more often than full-photo results",
            "uploads are validated like catalogue images, so a bad file gives a message, not a traceback",
        ],
        "questions": [
            "What does the app search in garment mode: the query photo or its cut-out?",
            "How many of the example query's results were the same item in each mode?",
            "What happens when you upload a file that is not an image?",
            "Why is a catalogue query faster than a new upload?",
            "Which Bedrock-only control does the offline app hide, and why?",
        ],
        "exercises_intro": "Try these before looking at the solution cell below each one.",
        "exercises": [
            ("Ask for the 10 best garment-only results for the same query, in a second app (so the one above "
             "keeps its state), and read them as text.",
             "# Solution: a second SearchApp with k = 10 in garment mode, the same query, its results as text\n"
             "app10 = SearchApp(settings)\n"
             "with app10.hold():\n"
             "    app10.k.value = 10\n"
             "    app10.mode.value = \"garment\"\n"
             "app10.select(both.query.image_id)\n"
             "print(app10.view.to_text())"),
            ("Add your own photo: here, mirror the query photo left to right, upload its PNG bytes to the second "
             "app with `upload_bytes`, and compare the results with the original query's.",
             "# Solution: mirror the query photo, turn it into PNG bytes, upload them to the second app (hint: `upload_bytes`)\n"
             "import io\n"
             "from PIL import Image\n\n"
             "buffer = io.BytesIO()\n"
             "Image.open(photo).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(buffer, format=\"PNG\")\n"
             "print(app10.upload_bytes(\"mirrored.png\", buffer.getvalue()).to_text())"),
        ],
        "after": "That is the whole workbook: from a photo to a mask, a cut-out, a vector, an index, a measured claim and an app.",
    },
    "02_masking": {
        "learned": [
            "Titan Image Generator makes a garment mask from words: INPAINTING with `maskPrompt` and `returnMask`",
            "Titan's mask is black where the garment is; the workbook turns every mask into True = garment at the boundary",
            "the offline masker combines mediapipe's person and pose with colour references taken where the body says",
            "IoU against ground truth measures a masker; skin-coloured dresses are its hard case",
            "masks are cached by image bytes, model id and prompt, so a re-run makes no calls",
        ],
        "questions": [
            "Which three request fields make Titan return a garment mask instead of only a new image?",
            "What colour is the garment in Titan's returned mask, and what does the workbook convert it to?",
            "What does the local masker do with a prompt it does not support?",
            "Why are skin-coloured dresses hard, and what does the masker use instead of colour for them?",
            "What is IoU, and what were the mean and median IoU in this run?",
            "How many masker calls did the second `mask_catalog` run make?",
        ],
        "exercises_intro": "Try these before looking at the solution cell below each one.",
        "exercises": [
            ("Change the garment prompt: mask the first photo with the prompt `\"skirt\"` and compare its area "
             "with the dress mask. How much of the skirt lies inside the dress?",
             "# Solution: mask the first photo with the prompt 'skirt' and compare it with its dress mask\n"
             "skirt, dress = local.mask(image, \"skirt\"), run.masks[first.image_id]\n"
             "print(f\"skirt {skirt.mean():.1%} of the photo, dress {dress.mean():.1%}, \"\n"
             "      f\"skirt inside dress {(skirt & dress).sum() / max(skirt.sum(), 1):.0%}\")"),
            ("Which three colours have the lowest mean IoU? Use the `scores` table.",
             "# Solution: the three colours with the lowest mean IoU (hint: `scores.groupby`)\n"
             "scores.groupby(\"colour\").iou.mean().sort_values().head(3).round(3)"),
        ],
        "after": "A mask is only a means: `03_cutting` turns it into the picture the embedder sees.",
    },
    "03_cutting": {
        "learned": [
            "three cut-out forms: on white (full size), transparent RGBA, and a tight square crop",
            "the square crop makes the garment fill the embedder's input, with nothing of the shoot around it",
            "dilation adds a ring of pixels around the mask; feathering softens the edge",
            "an empty mask is an explicit `NoGarment` outcome, never a blank image silently embedded",
        ],
        "questions": [
            "Which cut-out form does the workbook embed, and why?",
            "What does the square crop do to the garment's share of the pixels?",
            "What is the difference between dilating and feathering a mask edge?",
            "What happens when the mask is empty?",
            "How many cut-outs came from the cache in the batch step?",
        ],
        "exercises_intro": "Try these before looking at the solution cell below each one.",
        "exercises": [
            ("Make a square cut-out with a much wider margin (0.25) and look at it. What would the embedder "
             "see more of?",
             "# Solution: a 224 px square cut-out with margin 0.25 (hint: `cutting.square_crop`)\n"
             "wide = cutting.square_crop(image, mask, margin=0.25, size=224)\n"
             "wide"),
            ("Make the transparent (RGBA) form and check that every pixel outside the garment is fully "
             "transparent.",
             "# Solution: the RGBA cut-out and the share of fully transparent pixels outside the mask\n"
             "rgba = cutting.cut(image, mask, \"rgba\")\n"
             "alpha = np.asarray(rgba)[..., 3]\n"
             "print(rgba.mode, rgba.size, f\"transparent outside the garment: {(alpha[~mask] == 0).mean():.0%}\")"),
        ],
        "after": "Next, both the whole photo and this cut-out become vectors.",
    },
}
