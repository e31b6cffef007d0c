"""The garment parser's network (helpers.maskers.parser): a fine-tuned EfficientNet-Lite0 with a
stride-4 decoder, and its one-file ONNX export.

Why a module of its own: the run-time masker, the training command (helpers.maskers.parser_train)
and the ONNX-vs-torch test must build exactly the same network from the same weights.

* Network: the EfficientNet-Lite0 taps of helpers.maskers.parser_backbone. The stem and the blocks
  up to stride 4 keep their ImageNet weights (frozen in training); the later blocks are fine-tuned.
  Decoder: the four maps stacked at stride 8 (496 channels) -> 1x1 conv 64, ReLU, 3x3 conv 64, BN,
  ReLU -> upsampled to stride 4 and joined with the stride-4 map (1x1 conv 16, BN, ReLU) -> 3x3
  conv 32, BN, ReLU -> 1x1 conv -> 9 classes (softmax in the ONNX).
* Committed weights (models/parser-net.npz): only what differs from the pip-installed ImageNet
  weights, i.e. the fine-tuned blocks and the decoder, as float16 (float32 for BatchNorm
  statistics), so the file stays small.
* ONNX (models/parser-net.onnx): exported by `make models` (helpers.modelbuild) from the pip
  weights + that file; the run time loads it without torch (`session`), checked against
  models/onnx-manifest.json.
torch is imported inside the functions: importing this module costs nothing.
"""
from __future__ import annotations

import contextlib
import io
import tempfile
import warnings
from pathlib import Path

import numpy as np

from helpers.errors import ModelFileError
from helpers.extras import available, install_hint, require
from helpers.maskers import parser_backbone as pb

N_CLASSES = 9
WEIGHTS_PATH = Path(__file__).resolve().parent / "models" / "parser-net.npz"
EXPORT_RECIPE = {"version": 1, "net": "effl0-ft-s4-decoder", "input": f"{pb.W}x{pb.H}", "opset": 17}


def build(ch: int = 64, s4ch: int = 16, fch: int = 32):
    """The network with the ImageNet backbone and a freshly initialised decoder (torch module)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class ParserNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.bb = pb.torch_backbone()
            self.head8 = nn.Sequential(nn.Conv2d(sum(pb.STRIDE_CH), ch, 1), nn.ReLU(),
                                       nn.Conv2d(ch, ch, 3, padding=1), nn.BatchNorm2d(ch), nn.ReLU())
            self.s4 = nn.Sequential(nn.Conv2d(pb.STRIDE_CH[0], s4ch, 1), nn.BatchNorm2d(s4ch), nn.ReLU())
            self.fuse = nn.Sequential(nn.Conv2d(ch + s4ch, fch, 3, padding=1), nn.BatchNorm2d(fch), nn.ReLU(),
                                      nn.Conv2d(fch, N_CLASSES, 1))
            self.freeze_upto = self.bb.taps[0]   # the stem and the blocks up to the stride-4 tap

        def taps(self, x):
            net = self.bb.net
            with torch.no_grad():   # frozen part: no graph kept, faster training
                x = net._swish(net._bn0(net._conv_stem(x)))
                for block in net._blocks[:self.freeze_upto + 1]:
                    x = block(x)
            outs = [x]
            for i in range(self.freeze_upto + 1, len(net._blocks)):
                x = net._blocks[i](x)
                if i in self.bb.taps:
                    outs.append(x)
            return outs

        def forward(self, x):
            """Logits at stride 4 (N x 9 x 96 x 64)."""
            s4, s8, s16, s32 = self.taps(x)
            f = self.head8(stack_s8(s4, s8, s16, s32))
            f = F.interpolate(f, size=s4.shape[-2:], mode="bilinear", align_corners=False)
            return self.fuse(torch.cat([f, self.s4(s4)], 1))

        def param_groups(self):
            """(fine-tuned backbone parameters, decoder parameters); freezes the rest."""
            net = self.bb.net
            tuned = [p for b in net._blocks[self.freeze_upto + 1:] for p in b.parameters()]
            keep = set(map(id, tuned))
            for p in net.parameters():
                p.requires_grad = id(p) in keep
            decoder = [p for m in (self.head8, self.s4, self.fuse) for p in m.parameters()]
            return tuned, decoder

        def set_train(self):
            """Training mode with the backbone's BatchNorm statistics frozen (small batches)."""
            self.train()
            self.bb.eval()

    return ParserNet().eval()


def stack_s8(s4, s8, s16, s32):
    """The four maps at stride 8, stacked: s4 average-pooled, s16 / s32 bilinearly upsampled."""
    import torch
    import torch.nn.functional as F

    size = s8.shape[-2:]
    return torch.cat([F.avg_pool2d(s4, 2), s8, F.interpolate(s16, size=size, mode="bilinear", align_corners=False),
                      F.interpolate(s32, size=size, mode="bilinear", align_corners=False)], 1)


def _saved_keys(net) -> list[str]:
    """State keys that differ from the ImageNet weights: the tuned blocks and the decoder."""
    tuned = tuple(f"bb.net._blocks.{i}." for i in range(net.freeze_upto + 1, len(net.bb.net._blocks)))
    return [k for k in net.state_dict() if k.startswith(tuned) or k.split(".")[0] in ("head8", "s4", "fuse")]


def save_weights(net, path: Path | str) -> Path:
    """The tuned weights as an .npz: float16, BatchNorm statistics float32 (small, exact enough)."""
    state = net.state_dict()
    arrays = {}
    for k in _saved_keys(net):
        v = state[k].detach().cpu().numpy()
        if v.dtype == np.float32 and not k.endswith(("running_mean", "running_var")):
            v = v.astype(np.float16)
        arrays[k] = v
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def load(path: Path | str = WEIGHTS_PATH):
    """The network with the committed (or a given) tuned weights, in eval mode."""
    import torch

    net = build()
    with np.load(path) as data:
        arrays = {k: torch.from_numpy(data[k].astype(np.float32) if data[k].dtype == np.float16 else data[k])
                  for k in data.files}
    expected = set(_saved_keys(net))
    if set(arrays) != expected:
        raise ValueError(f"{path} does not hold the parser network's tuned weights "
                         f"({len(set(arrays) ^ expected)} keys differ); train it again")
    net.load_state_dict(arrays, strict=False)
    return net.eval()


def export(net, path: Path | str) -> Path:
    """The network + softmax as one ONNX: input x (N x 3 x 384 x 256) -> probs (N x 9 x 96 x 64)."""
    import torch

    class WithSoftmax(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            return torch.softmax(self.net(x), 1)

    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(WithSoftmax().eval(), torch.zeros(1, 3, pb.H, pb.W), str(path), dynamo=False,
                          opset_version=EXPORT_RECIPE["opset"], input_names=["x"], output_names=["probs"],
                          dynamic_axes={"x": {0: "n"}, "probs": {0: "n"}})
    return Path(path)


def session(cache_dir: Path | str | None = None, weights: Path | str = WEIGHTS_PATH, threads: int = 1):
    """An onnxruntime session of the network on `threads` threads, without torch: the committed
    models/parser-net.onnx (checked against its manifest, helpers.onnxmodels) when `weights` are
    the weights it was built from. Other weights (a network just trained with `masks train`) are
    exported in memory, which needs torch (the train extra). `cache_dir` is not used any more
    (the export is no longer cached); it stays for the callers' signature."""
    from helpers import onnxmodels

    record = onnxmodels.entry("parser-net")
    if onnxmodels.sha256_file(weights) == record["sources"]["tuned_weights"]["sha256"]:
        return onnxmodels.session(onnxmodels.verified("parser-net"), threads)
    if Path(weights).resolve() == WEIGHTS_PATH.resolve() and not available("torch"):
        raise ModelFileError(f"{WEIGHTS_PATH} differs from the weights {onnxmodels.FILES['parser-net']} was built "
                             f"from; rebuild it with `{onnxmodels.REBUILD}` (needs `{install_hint('train')}`)")
    require("torch", "train", f"the parser weights {weights} (not the committed ones)")
    with tempfile.TemporaryDirectory() as tmp:
        return onnxmodels.session(export(load(weights), Path(tmp) / "parser.onnx").read_bytes(), threads)
