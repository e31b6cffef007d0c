"""The garment parser's ONNX graphs agree with torch on real inputs (generated catalogue photos):
the exported backbone's four taps, and the head export recipe (helpers.maskers.parser_train)
fed with those real taps. Also: the committed head gives proper probabilities on them."""
from __future__ import annotations

import numpy as np
import pytest

from helpers.catalog import load_catalog
from helpers.images import open_image
from helpers.maskers import parser_backbone as pb

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def real_inputs(small_catalog):
    table = load_catalog(small_catalog).table
    rgbs = [np.asarray(open_image(p).convert("RGB")) for p in table["image_path"].iloc[[0, 17, 33]]]
    return np.concatenate([pb.to_input(r) for r in rgbs])


@pytest.fixture(scope="module")
def taps(real_inputs, tmp_path_factory):
    """(onnx taps, torch taps) of the real inputs."""
    path = pb.backbone_onnx(tmp_path_factory.mktemp("bb"))
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": real_inputs})
    with torch.no_grad():
        want = [t.numpy() for t in pb.torch_backbone()(torch.from_numpy(real_inputs))]
    return got, want


def test_backbone_taps_match_torch(taps):
    got, want = taps
    assert [g.shape[1:] for g in got] == [(c, pb.H // s, pb.W // s) for c, s in zip(pb.STRIDE_CH, pb.STRIDES)]
    for g, w in zip(got, want):
        scale = float(np.abs(w).max())
        assert np.abs(g - w).max() <= 1e-4 * max(1.0, scale), (np.abs(g - w).max(), scale)


def test_head_export_matches_torch_on_real_taps(taps, tmp_path):
    from helpers.maskers.parser_train import export_head, head_module

    torch.manual_seed(0)
    head = head_module()
    bn = head.body[3]
    bn.running_mean.uniform_(-0.5, 0.5)      # non-trivial BatchNorm statistics, as after training
    bn.running_var.uniform_(0.5, 2.0)
    head.eval()
    path = export_head(head, tmp_path / "head.onnx")
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, dict(zip(pb.TAPS, taps[0])))[0]
    with torch.no_grad():
        want = torch.softmax(head(*map(torch.from_numpy, taps[0])), 1).numpy()
    assert got.shape == want.shape == (3, 9, pb.H // 8, pb.W // 8)
    assert np.abs(got - want).max() < 1e-5


def test_committed_head_gives_probabilities(taps):
    from helpers.maskers.parser import HEAD_PATH

    probs = ort.InferenceSession(str(HEAD_PATH), providers=["CPUExecutionProvider"]).run(
        None, dict(zip(pb.TAPS, taps[0])))[0]
    assert probs.shape == (3, 9, pb.H // 8, pb.W // 8)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-4)
    # each catalogue photo is mostly background with a dress (class 3) in the middle
    assert (probs.argmax(1) == 3).mean(axis=(1, 2)).min() > 0.05
