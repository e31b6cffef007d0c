"""Train the garment parser's head: `python -m helpers masks train --dataset ccp DIR [--catalog DIR] [--out FILE]`.

What it does (about 20-25 minutes on 2 cores, measured in parts; see parser-head.json):
1. Every CCP photo of the TRAIN split (number % 5 != 0; the held-out split is never read) and
   its mirror image go through the frozen backbone (helpers.maskers.parser_backbone); the four
   feature maps are stacked at stride 8 (496 channels) and kept as float16 memory-mapped files
   in --work (derived from the photos: scratch, never commit them).
2. Optionally a generated TRAINING catalogue (`python -m helpers sample --seed 1 --out DIR`;
   never the bundled seed-0 catalogue, on which the masker is judged): garment -> dress, the rest
   of the person -> skin.
3. The head (1x1 conv 496 -> 64, ReLU, 3x3 conv 64, BatchNorm, ReLU, 1x1 conv -> 9 classes) is
   trained with AdamW (one-cycle, 3e-3), batch 16, cross-entropy (padding ignored), channel
   dropout 0.2 on the frozen features, 20 epochs, seed 0; exported to ONNX with a softmax.
torch is imported inside the functions: importing this module costs nothing.
"""
from __future__ import annotations

import argparse
import json
import time
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image

from helpers.maskers import parser_backbone as pb

N_CLASSES = 9
CATALOG_DRESS, CATALOG_SKIN = 3, 1
GRID8 = (pb.H // 8, pb.W // 8)


def head_module(ch: int = 64):
    """The head as a torch module: forward(s4, s8, s16, s32) -> logits at stride 8;
    forward_stacked(x) takes the already stacked 496-channel map."""
    import torch
    from torch import nn

    class Head8(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(sum(pb.STRIDE_CH), ch, 1), nn.ReLU(),
                                      nn.Conv2d(ch, ch, 3, padding=1), nn.BatchNorm2d(ch), nn.ReLU(),
                                      nn.Conv2d(ch, N_CLASSES, 1))

        def forward_stacked(self, x):
            return self.body(x)

        def forward(self, s4, s8, s16, s32):
            return self.body(stack_s8(s4, s8, s16, s32))

    return Head8()


def stack_s8(s4, s8, s16, s32):
    """The four maps at stride 8, stacked: s4 average-pooled, s16 / s32 bilinearly upsampled."""
    import torch
    import torch.nn.functional as F

    size = s8.shape[-2:]
    return torch.cat([F.avg_pool2d(s4, 2), s8, F.interpolate(s16, size=size, mode="bilinear", align_corners=False),
                      F.interpolate(s32, size=size, mode="bilinear", align_corners=False)], 1)


def export_head(head, path: Path | str) -> Path:
    """The head + softmax as ONNX: inputs s4, s8, s16, s32 -> output probs (N x 9 x 48 x 32)."""
    import torch

    class WithSoftmax(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.head = head

        def forward(self, s4, s8, s16, s32):
            return torch.softmax(self.head(s4, s8, s16, s32), 1)

    dummy = tuple(torch.zeros(1, c, pb.H // s, pb.W // s) for c, s in zip(pb.STRIDE_CH, pb.STRIDES))
    torch.onnx.export(WithSoftmax().eval(), dummy, str(path), dynamo=False, opset_version=17,
                      input_names=list(pb.TAPS), output_names=["probs"],
                      dynamic_axes={**{k: {0: "n"} for k in pb.TAPS}, "probs": {0: "n"}})
    return Path(path)


def ccp_items(root: Path | str):
    """(image_id, rgb, class map) of every TRAIN-split CCP photo (the held-out split is skipped)."""
    from helpers import ccp

    for rec in ccp.load_ccp(root, "train").to_dict("records"):
        rgb = np.asarray(Image.open(rec["image_path"]).convert("RGB"))
        yield rec["image_id"], rgb, ccp.class_map(root, rec["image_id"])


def catalog_items(catalog: Path | str):
    """(image_id, rgb, class map) of a generated catalogue: garment -> dress, person -> skin."""
    from helpers.catalog import load_catalog

    for rec in load_catalog(catalog).table.to_dict("records"):
        rgb = np.asarray(Image.open(rec["image_path"]).convert("RGB"))
        garment = np.asarray(Image.open(rec["garment_mask_path"]).convert("L")) > 127
        person = np.asarray(Image.open(rec["person_mask_path"]).convert("L")) > 127
        labels = np.zeros(garment.shape, np.uint8)
        labels[person] = CATALOG_SKIN
        labels[garment] = CATALOG_DRESS
        yield rec["image_id"], rgb, labels


def precompute(items: list, backbone, work: Path, name: str, batch: int = 8) -> dict[str, np.ndarray]:
    """Stacked stride-8 features (float16 memmap) and label grids of every item and its mirror."""
    import torch

    n = 2 * len(items)
    x = np.lib.format.open_memmap(work / f"{name}-x.npy", "w+", np.float16, (n, sum(pb.STRIDE_CH), *GRID8))
    grid = np.empty((n, *GRID8), np.uint8)
    inputs: list[np.ndarray] = []
    done = 0

    def flush():
        nonlocal done
        if inputs:
            taps = backbone.run(None, {"x": np.concatenate(inputs)})
            with torch.no_grad():
                x[done:done + len(inputs)] = stack_s8(*map(torch.from_numpy, taps)).numpy().astype(np.float16)
            done += len(inputs)
            inputs.clear()

    k = 0
    for _, rgb, labels in items:
        for flip in (False, True):
            r, lab = (rgb[:, ::-1], labels[:, ::-1]) if flip else (rgb, labels)
            inputs.append(pb.to_input(np.ascontiguousarray(r)))
            grid[k] = pb.labels_to_grid(np.ascontiguousarray(lab))[::2, ::2]
            k += 1
            if len(inputs) == batch:
                flush()
    flush()
    x.flush()
    return {"x": x, "grid8": grid}


def train_head(data: dict[str, np.ndarray], epochs: int = 20, lr: float = 3e-3, batch: int = 16,
               jitter: float = 0.2, seed: int = 0, threads: int = 2, log=print):
    """Train the head on stacked features (AdamW, one-cycle, cross-entropy ignoring 255)."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    head = head_module()
    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-4)
    n = len(data["grid8"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * ((n + batch - 1) // batch),
                                                pct_start=0.1)
    t0 = time.time()
    for epoch in range(epochs):
        head.train()
        order, total = rng.permutation(n), 0.0
        for i in range(0, n, batch):
            idx = np.sort(order[i:i + batch])
            x = F.dropout2d(torch.from_numpy(data["x"][idx].astype(np.float32)), jitter)
            y = torch.from_numpy(data["grid8"][idx].astype(np.int64))
            loss = F.cross_entropy(head.forward_stacked(x), y, ignore_index=255)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss) * len(idx)
        log(f"epoch {epoch + 1}/{epochs} loss {total / n:.4f} ({time.time() - t0:.0f} s)")
    return head.eval()


def main(argv: list[str] | None = None) -> int:
    from helpers.maskers.parser import HEAD_PATH, _session
    from helpers.settings import load_settings

    ap = argparse.ArgumentParser(prog="python -m helpers masks train")
    ap.add_argument("--dataset", choices=("ccp",), default="ccp")
    ap.add_argument("dir", type=Path, help="the Clothing Co-Parsing tree (only its train split is read)")
    ap.add_argument("--catalog", type=Path, help="a generated TRAINING catalogue (seed 1; never the bundled seed 0)")
    ap.add_argument("--out", type=Path, default=HEAD_PATH, help=f"the head ONNX to write (default {HEAD_PATH})")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--work", type=Path, help="feature files (default: the cache folder); derived from photos")
    args = ap.parse_args(argv)
    settings = load_settings()
    work = args.work or Path(settings.cache_dir) / "parser-train"
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    backbone = _session(pb.backbone_onnx(settings.cache_dir), 2)
    sets = [precompute(list(ccp_items(args.dir)), backbone, work, "ccp")]
    if args.catalog:
        sets.append(precompute(list(catalog_items(args.catalog)), backbone, work, "catalog"))
    data = {k: np.concatenate([s[k] for s in sets]) for k in ("x", "grid8")}
    t1 = time.time()
    head = train_head(data, epochs=args.epochs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    export_head(head, args.out)
    record = {"head": str(args.out), "samples": int(len(data["grid8"])), "features_s": round(t1 - t0, 1),
              "train_s": round(time.time() - t1, 1), "date": date.today().isoformat(),
              "command": "python -m helpers masks train --dataset ccp DIR" + (" --catalog CAT" if args.catalog else "")}
    print(json.dumps(record))
    return 0
