"""Two runs of helpers.maskers.garments_train side by side, paired where the truth is the same.

`python tools/garments_compare.py OLD_RESULTS NEW_RESULTS OLD.npz NEW.npz [CCP_DIR] [--same-grouping]
[--changed LABEL,LABEL]`: the results folders (ccp-cv-<prompt>-parser.json, with per_image) and the
--dump files of two runs. Prints, per prompt: held-out CV IoU of each run and the paired difference
(95 % bootstrap interval) over the photos in both whose truth has no pixel of a regrouped label;
per kind on the tagged photos: presence AUC (bootstrap interval), false cut-out and not-found rates
of each run, and their paired differences over the photos without a regrouped tag (labels the same
under either grouping). --changed names the CCP labels the two runs group differently (default
jumper); with --same-grouping (both runs with one helpers.ccp grouping, e.g. two parser networks)
the pairs are over every photo.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from garments_presence_cv import auc_ci
from helpers import ccp
from helpers.maskers import garments as G
from helpers.maskeval import PROMPT_ORDER
from helpers.metrics import bootstrap_mean

PROMPTS = PROMPT_ORDER   # clothes, then each garment kind


def ci(values) -> list[float]:
    return [round(x, 3) for x in bootstrap_mean(np.asarray(values, float), rounds=2000)["ci95"]]


def heldout(old_dir: Path, new_dir: Path, changed) -> None:
    """Held-out CV IoU of both runs, paired over the photos whose truth is the same in both."""
    for prompt in PROMPTS:
        a, b = (json.loads((d / f"ccp-cv-{prompt}-parser.json").read_text()) for d in (old_dir, new_dir))
        ha, hb = a["heldout_cv"], b["heldout_cv"]
        print(prompt, "old", ha["photos"], ha["iou_mean"], ha["ci95"], "nf", ha["not_found"],
              "| new", hb["photos"], hb["iou_mean"], hb["ci95"], "nf", hb["not_found"])
        if "per_image" not in a or "per_image" not in b:
            continue
        oa = {r["image"]: r["iou"] for r in a["per_image"]}
        ob = {r["image"]: r["iou"] for r in b["per_image"]}
        common = sorted(set(oa) & set(ob))
        same = [i for i in common if not changed(i)]
        other = [i for i in common if changed(i)] + sorted(set(oa) ^ set(ob))
        d = [ob[i] - oa[i] for i in same]
        print(f"   paired on {len(same)} photos, same truth: diff {np.mean(d):+.4f} {ci(d)}",
              "| truth changed or in one run only:", {i: (oa.get(i), ob.get(i)) for i in other})


def tagged(old: dict, new: dict, changed_tag: np.ndarray) -> None:
    """Per kind: AUC and error rates of each run; paired differences on the photos whose tags
    mean the same under both groupings."""
    keep = ~changed_tag
    for k, kind in enumerate(G.KINDS):
        lines = [kind]
        for name, run in (("old", old), ("new", new)):
            from sklearn.metrics import roc_auc_score

            y, p, found = run["present"][:, k], run["presence_oof"][:, k], run[f"found_{kind}"]
            lines.append(f"{name}: AUC {roc_auc_score(y, p):.3f} {auc_ci(y, p, rounds=2000)}"
                         f" cut {found[~y].mean():.3f} {ci(found[~y])} of {(~y).sum()}"
                         f" nf {(~found[y]).mean():.3f} {ci(~found[y])} of {y.sum()}")
        y, fa, fb = old["present"][keep, k], old[f"found_{kind}"][keep], new[f"found_{kind}"][keep]
        cut = fb[~y].astype(float) - fa[~y]
        miss = (~fb[y]).astype(float) - (~fa[y])
        lines.append(f"paired ({keep.sum()} photos): cut diff {cut.mean():+.3f} {ci(cut)} nf diff {miss.mean():+.3f} {ci(miss)}")
        print("\n   ".join(lines))


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python tools/garments_compare.py", description=__doc__.splitlines()[0])
    ap.add_argument("old_dir", type=Path)
    ap.add_argument("new_dir", type=Path)
    ap.add_argument("old_npz", type=Path)
    ap.add_argument("new_npz", type=Path)
    ap.add_argument("root", nargs="?", default="../shared/realdata/ccp-dev", help="the CCP tree")
    ap.add_argument("--same-grouping", action="store_true", help="both runs group the labels alike: pair every photo")
    ap.add_argument("--changed", default="jumper", help="the CCP labels the two runs group differently, comma-separated")
    args = ap.parse_args(argv)
    root, same_grouping, labels = args.root, args.same_grouping, set(args.changed.split(","))
    ids = np.flatnonzero(np.isin(np.asarray(ccp.label_names(root)), sorted(labels)))

    def changed(image: str) -> bool:
        return not same_grouping and bool(np.isin(ccp.label_map(root, image), ids).any())

    heldout(args.old_dir, args.new_dir, changed)
    old, new = np.load(args.old_npz), np.load(args.new_npz)
    assert (old["image_id"] == new["image_id"]).all(), "the two dumps hold different photos"
    tags = ccp.load_tags(root).set_index("image_id")
    changed_tag = np.array([not same_grouping and bool(labels & set(tags.loc[i, "tags"])) for i in old["image_id"]])
    if not same_grouping:
        print(f"tagged photos with a regrouped label ({', '.join(sorted(labels))}):", int(changed_tag.sum()))
    tagged(old, new, changed_tag)


if __name__ == "__main__":
    main(sys.argv[1:])
