"""The garment parser's network (helpers.maskers.parser_net) on real inputs (generated catalogue
photos): the exported ONNX agrees with torch, for a freshly built network with non-trivial
BatchNorm statistics and for the committed weights (the committed ONNX file, helpers.onnxmodels);
the weights file round-trips; a file that is not the parser's weights is refused. (The committed
file's checks at load: tests/test_onnxmodels.py.)"""
from __future__ import annotations

import numpy as np
import pytest

from helpers.catalog import load_catalog
from helpers import onnxmodels
from helpers.images import open_image
from helpers.maskers import parser_backbone as pb
from helpers.maskers import parser_net

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

OUT_SHAPE = (3, parser_net.N_CLASSES, pb.H // 4, pb.W // 4)


@pytest.fixture(scope="module")
def real_inputs(small_catalog):
    table = load_catalog(small_catalog).table
    rgbs = [np.asarray(open_image(p).convert("RGB")) for p in table["image_path"].iloc[[0, 17, 33]]]
    return np.concatenate([pb.to_input(r) for r in rgbs])


def _run(path, x):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def _torch_probs(net, x):
    with torch.no_grad():
        return torch.softmax(net(torch.from_numpy(x)), 1).numpy()


def test_export_matches_torch_on_real_inputs(real_inputs, tmp_path):
    torch.manual_seed(0)
    net = parser_net.build()
    for m in net.modules():   # non-trivial decoder statistics, as after training
        if isinstance(m, torch.nn.BatchNorm2d) and m.num_features in (16, 32, 64):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    got = _run(parser_net.export(net.eval(), tmp_path / "net.onnx"), real_inputs)
    want = _torch_probs(net, real_inputs)
    assert got.shape == want.shape == OUT_SHAPE
    assert np.abs(got - want).max() < 1e-4


def test_weights_round_trip_and_wrong_files_are_refused(tmp_path):
    torch.manual_seed(1)
    net = parser_net.build()
    path = parser_net.save_weights(net, tmp_path / "w.npz")
    with np.load(path) as data:
        assert not any(k.startswith("bb.net._conv_stem") or k.startswith("bb.net._fc") for k in data.files)
        assert data["fuse.3.weight"].dtype == np.float16 and data["fuse.1.running_var"].dtype == np.float32
    again = parser_net.load(path)
    a, b = net.state_dict(), again.state_dict()
    assert set(a) == set(b)
    for k in a:   # float16 storage: equal to ~1e-3 relative
        assert torch.allclose(a[k].float(), b[k].float(), rtol=2e-3, atol=1e-4), k
    bad = tmp_path / "bad.npz"
    np.savez(bad, something=np.zeros(3))
    with pytest.raises(ValueError, match="train it again"):
        parser_net.load(bad)


def test_committed_onnx_matches_torch_and_finds_dresses(real_inputs):
    path = onnxmodels.verified("parser-net")
    got = _run(path, real_inputs)
    want = _torch_probs(parser_net.load(), real_inputs)
    assert got.shape == OUT_SHAPE
    assert np.abs(got - want).max() < 1e-4
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-4)
    # each catalogue photo is mostly background with a dress (class 3) in the middle
    assert (got.argmax(1) == 3).mean(axis=(1, 2)).min() > 0.05
    # the run-time session is that file
    again = parser_net.session(None).run(None, {"x": real_inputs})[0]
    assert np.abs(again - got).max() < 1e-6
