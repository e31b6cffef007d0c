"""Two runs of helpers.maskers.garments_train side by side, paired where the truth is the same.

`python tools/garments_compare.py OLD_RESULTS NEW_RESULTS OLD.npz NEW.npz [CCP_DIR]`: the results
folders (ccp-cv-<prompt>-parser.json, with per_image) and the --dump files of two runs. Prints,
per prompt: held-out CV IoU of each run and the paired difference (95 % bootstrap interval) over
the photos in both whose truth has no "jumper" pixel; per kind on the tagged photos: presence AUC
(bootstrap interval), false cut-out and not-found rates of each run, and their paired differences
over the photos without a "jumper" tag (labels the same under either grouping). With
--same-grouping (both runs with one helpers.ccp grouping, e.g. two parser networks) the pairs are
over every photo.
"""
import json, sys
import numpy as np
from helpers.metrics import bootstrap_mean
from helpers import ccp
same_grouping = "--same-grouping" in sys.argv   # both runs with one grouping: pair on every photo
sys.argv = [a for a in sys.argv if a != "--same-grouping"]
old_dir, new_dir, old_npz, new_npz = sys.argv[1:5]
root = sys.argv[5] if len(sys.argv) > 5 else "../shared/realdata/ccp-dev"
jump = ccp._ids(root, ("jumper",))
def has_jumper(img):
    if same_grouping:
        return False
    return bool(np.isin(ccp.label_map(root, img), jump).any())
def ci(v):
    r = bootstrap_mean(np.asarray(v, float), rounds=2000); return [round(x, 3) for x in r["ci95"]]
for p in ("clothes", "dress", "top", "skirt", "trousers"):
    a = json.load(open(f"{old_dir}/ccp-cv-{p}-parser.json")); b = json.load(open(f"{new_dir}/ccp-cv-{p}-parser.json"))
    print(p, "old", a["heldout_cv"]["photos"], a["heldout_cv"]["iou_mean"], a["heldout_cv"]["ci95"], "nf", a["heldout_cv"]["not_found"],
          "| new", b["heldout_cv"]["photos"], b["heldout_cv"]["iou_mean"], b["heldout_cv"]["ci95"], "nf", b["heldout_cv"]["not_found"],
          "| new p3", b.get("heldout_p3_baseline", {}).get("iou_mean"), b.get("heldout_p3_baseline", {}).get("ci95"))
    if "per_image" not in a: continue
    oa = {r["image"]: r["iou"] for r in a["per_image"]}; ob = {r["image"]: r["iou"] for r in b["per_image"]}
    common = sorted(set(oa) & set(ob)); same = [i for i in common if not has_jumper(i)]
    only_a = sorted(set(oa) - set(ob)); only_b = sorted(set(ob) - set(oa)); changed = [i for i in common if has_jumper(i)]
    d = [ob[i] - oa[i] for i in same]
    print("   paired on", len(same), "photos, same truth: diff", round(float(np.mean(d)), 4), ci(d), "| truth changed:", changed,
          "only old:", only_a, "only new:", only_b, {i: (oa.get(i), ob.get(i)) for i in changed + only_a + only_b})
from sklearn.metrics import roc_auc_score
A, B = np.load(old_npz), np.load(new_npz)
assert (A["image_id"] == B["image_id"]).all()
tags = ccp.load_tags(root).set_index("image_id")
jt = np.array([("jumper" in tags.loc[i, "tags"]) and not same_grouping for i in A["image_id"]])
print("tagged photos with jumper:", jt.sum())
rng = np.random.default_rng(0)
for k, kind in enumerate(("dress", "top", "skirt", "trousers")):
    out = [kind]
    for name, Z in (("old", A), ("new", B)):
        y, p, f = Z["present"][:, k], Z["presence_oof"][:, k], Z[f"found_{kind}"]
        boots = []
        n = len(y)
        for _ in range(2000):
            s = rng.integers(0, n, n)
            if y[s].all() or not y[s].any(): continue
            boots.append(roc_auc_score(y[s], p[s]))
        out.append(f"{name}: AUC {roc_auc_score(y, p):.3f} [{np.percentile(boots, 2.5):.3f}, {np.percentile(boots, 97.5):.3f}]"
                   f" cut {f[~y].mean():.3f} {ci(f[~y].astype(float))} of {(~y).sum()} nf {(~f[y]).mean():.3f} {ci((~f[y]).astype(float))} of {y.sum()}")
    # paired on photos without a jumper tag (labels identical)
    keep = ~jt
    ya, fa, fb = A["present"][keep, k], A[f"found_{kind}"][keep], B[f"found_{kind}"][keep]
    out.append(f"paired (no jumper tag, {keep.sum()}): cut diff {(fb[~ya].astype(float) - fa[~ya]).mean():+.3f} "
               f"{ci(fb[~ya].astype(float) - fa[~ya])} nf diff {((~fb[ya]).astype(float) - (~fa[ya])).mean():+.3f} {ci((~fb[ya]).astype(float) - (~fa[ya]))}")
    print("\n   ".join(out))
