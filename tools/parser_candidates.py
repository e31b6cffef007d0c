"""Judge retrained parser networks against the committed one, the way issue 22 needs: several runs.

`python tools/parser_candidates.py CCP_DIR NPZ [NPZ ...] [--catalog DIR] [--work DIR]`

Each NPZ is a `python -m helpers masks train ... --seed S --out NPZ` run. For the committed network
and for each NPZ, in WORK/<name>/ (cached: a second call only prints):
1. `garments_train --weights NPZ`: the presence head and the per-prompt rules retrained on that
   network, its held-out CV IoU per prompt and its tagged-photo figures (results/, dump.npz);
2. the catalogue (default: the bundled seed-0 `data/sample`, prompt dress) masked by that network
   with its own head (catalog.json).
Then one table (a row per network; the candidates' mean and range) and, per candidate, the paired
comparison with the committed network (tools/garments_compare.py). Why several: two seeds of one
recipe differ by more than a paired interval over photos allows (data/results/README.md, "Tried and
rejected: retraining the network with jumper = dress"), so a recipe is judged by its runs' spread.
Nothing under helpers/ is replaced; needs the train extra (torch exports each network in memory).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

import numpy as np

import garments_compare
from helpers.maskers import garments as G
from helpers.maskers import garments_train, parser_net

PROMPTS = garments_compare.PROMPTS


@contextlib.contextmanager
def head(path: Path):
    """The parser uses this presence head (models/garments.json) while the block runs."""
    saved = G.MODEL_PATH
    G.MODEL_PATH = path
    try:
        yield
    finally:
        G.MODEL_PATH = saved


def judge(ccp_dir: Path, weights: Path | None, work: Path, catalog: Path) -> dict:
    """Steps 1 and 2 for one network (None: the committed one); returns its figures."""
    from helpers.maskeval import eval_cases, eval_masker
    from helpers.maskers.parser import ParserMasker

    work.mkdir(parents=True, exist_ok=True)
    if not (work / "garments.json").is_file():
        argv = [str(ccp_dir), "--probs", str(work / "probs"), "--out", str(work / "garments.json"),
                "--results", str(work / "results"), "--dump", str(work / "dump.npz")]
        if garments_train.main(argv + (["--weights", str(weights)] if weights else [])) != 0:
            raise SystemExit(f"garments_train failed for {weights or 'the committed network'}")
    if not (work / "catalog.json").is_file():
        with head(work / "garments.json"):
            masker = ParserMasker(weights_path=weights) if weights else ParserMasker()
            doc = eval_masker(masker, eval_cases("catalog", catalog, "dress"), "dress", dataset="catalog")
        (work / "catalog.json").write_text(json.dumps(doc, indent=1) + "\n")
    row = {p: json.loads((work / "results" / f"ccp-cv-{p}-parser.json").read_text())["heldout_cv"]["iou_mean"]
           for p in PROMPTS}
    row["catalogue"] = json.loads((work / "catalog.json").read_text())["iou"]["mean"]
    return row


def table(rows: dict[str, dict]) -> str:
    """A row per network, then the candidates' mean and range (the committed network first)."""
    cols = [*PROMPTS, "catalogue"]
    lines = ["| network | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(f"{row[c]:.3f}" for c in cols) + " |" for name, row in rows.items()]
    cands = [row for name, row in rows.items() if name != "committed"]
    if len(cands) > 1:
        stats = [(np.mean([r[c] for r in cands]), min(r[c] for r in cands), max(r[c] for r in cands)) for c in cols]
        lines.append(f"| candidates' mean [range] ({len(cands)}) | "
                     + " | ".join(f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in stats) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python tools/parser_candidates.py", description=__doc__.splitlines()[0])
    ap.add_argument("ccp_dir", type=Path, help="the CCP tree (../shared/realdata/ccp-dev)")
    ap.add_argument("weights", type=Path, nargs="+", help="tuned weights of each candidate (masks train --out)")
    ap.add_argument("--catalog", type=Path, default=Path("data/sample"),
                    help="the catalogue to judge the dress masks on (default: the bundled seed-0 data/sample)")
    ap.add_argument("--work", type=Path, default=Path(".cache/parser-candidates"))
    args = ap.parse_args(argv)
    missing = [str(w) for w in [args.ccp_dir, args.catalog, *args.weights] if not w.exists()]
    if missing:
        print("error: not found: " + ", ".join(missing) + " (a catalogue: `make sample`)", file=sys.stderr)
        return 2
    committed = parser_net.WEIGHTS_PATH
    runs = {"committed": (None, args.work / "committed")}
    for w in args.weights:
        runs[w.stem] = (None if w.resolve() == committed.resolve() else w, args.work / w.stem)
    rows = {name: judge(args.ccp_dir, w, work, args.catalog) for name, (w, work) in runs.items()}
    print(table(rows))
    base = runs["committed"][1]
    for name, (_, work) in runs.items():
        if name != "committed":
            print(f"\n## {name} against the committed network (paired over the same photos)")
            garments_compare.main([str(base / "results"), str(work / "results"), str(base / "dump.npz"),
                                   str(work / "dump.npz"), str(args.ccp_dir), "--same-grouping"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
