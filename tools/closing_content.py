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
             "# Solution: settings.replace(backend='bedrock', embed_dim=256), then print the fields\n"
             "bedrock_settings = settings.replace(backend=\"bedrock\", embed_dim=256)\n"
             "print(settings.backend, settings.embed_dim, \"->\", bedrock_settings.backend, bedrock_settings.embed_dim)"),
            ("What would a run over a 1,000-image catalogue cost in Titan masks if 400 masks were already "
             "cached? Use `cost.estimate`.",
             "# Solution: cost.estimate(1000, 400, settings.mask_price_usd, 'Titan masks')\n"
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
             "# Solution: viz.item_sheet(table, table.item_id.iloc[len(table) // 2])\n"
             "viz.item_sheet(table, table.item_id.iloc[len(table) // 2])"),
            ("How many *items* are camel or ivory, the colours closest to skin? Count items, not photos.",
             "# Solution: filter table.colour, then count unique item_id per colour\n"
             "table[table.colour.isin([\"camel\", \"ivory\"])].groupby(\"colour\").item_id.nunique()"),
        ],
        "after": "Keep the confounder in mind: every later notebook asks whether a method looks at the dress or at the shoot.",
    },
}
