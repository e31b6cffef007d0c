import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from helpers import ccp

NAMES = ["null", "accessories", "bag", "belt", "blazer", "blouse", "bodysuit", "boots", "bra", "bracelet",
         "cape", "cardigan", "clogs", "coat", "dress", "earrings", "flats", "glasses", "gloves", "hair", "hat",
         "heels", "hoodie", "intimate", "jacket", "jeans", "jumper", "leggings", "loafers", "necklace",
         "panties", "pants", "pumps", "purse", "ring", "romper", "sandals", "scarf", "shirt", "shoes",
         "shorts", "skin", "skirt", "sneakers", "socks", "stockings", "suit", "sunglasses", "sweater",
         "sweatshirt", "swimwear", "t-shirt", "tie", "tights", "top", "vest", "wallet", "watch", "wedges"]


def _tree(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "annotations" / "pixel-level").mkdir(parents=True)
    savemat(tmp_path / "label_list.mat", {"label_list": np.array([NAMES], dtype=object)})
    gt = np.zeros((8, 6), np.uint8)
    gt[0, :] = 19   # hair
    gt[1, :] = 41   # skin
    gt[2:4, :] = 5  # blouse -> top
    gt[4:6, :] = 42  # skirt
    gt[6, :] = 53   # tights: not clothes
    gt[7, :] = 21   # heels
    for n in (1, 5, 7):
        Image.new("RGB", (6, 8)).save(tmp_path / "photos" / f"{n:04d}.jpg")
        savemat(tmp_path / "annotations" / "pixel-level" / f"{n:04d}.mat", {"groundtruth": gt})
    Image.new("RGB", (6, 8)).save(tmp_path / "photos" / "0009.jpg")  # no annotation: skipped
    return tmp_path


def test_load_and_split(tmp_path):
    root = _tree(tmp_path)
    t = ccp.load_ccp(root)
    assert list(t["image_id"]) == ["ccp-0001", "ccp-0005", "ccp-0007"]
    assert list(t["split"]) == ["train", "heldout", "train"]
    assert list(ccp.load_ccp(root, "heldout")["image_id"]) == ["ccp-0005"]
    assert ccp.label_names(str(root))[14] == "dress"


def test_truth_masks(tmp_path):
    root = _tree(tmp_path)
    for key in ("ccp-0001", "0001", str(root / "photos" / "0001.jpg")):
        assert ccp.truth_mask(root, key, "top")[2:4].all()
    assert ccp.truth_mask(root, "0001", "top").sum() == 12
    assert ccp.truth_mask(root, "0001", "skirt").sum() == 12
    assert ccp.truth_mask(root, "0001", "dress").sum() == 0
    assert ccp.truth_mask(root, "0001", "trousers").sum() == 0
    clothes = ccp.truth_mask(root, "0001", "clothes")
    assert clothes.sum() == 24 and clothes[2:6].all()
    assert ccp.truth_mask(root, "0001", "person").sum() == 48
    with pytest.raises(ValueError):
        ccp.truth_mask(root, "0001", "hat")


def test_class_map(tmp_path):
    root = _tree(tmp_path)
    c = ccp.class_map(root, "0001")
    assert [ccp.CLASSES[c[r, 0]] for r in range(8)] == ["hair", "skin", "top", "top", "skirt", "skirt",
                                                        "accessory", "accessory"]


def test_jumper_is_a_dress(tmp_path):
    """CCP's "jumper" is the US pinafore, a one-piece dress: dress in the truth, the parser's
    classes and the image-level kinds; never a top."""
    root = _tree(tmp_path)
    gt = np.zeros((8, 6), np.uint8)
    gt[2:6, :] = 26   # jumper
    gt[6:8, :] = 48   # sweater -> top
    savemat(root / "annotations" / "pixel-level" / "0001.mat", {"groundtruth": gt})
    assert ccp.truth_mask(root, "0001", "dress")[2:6].all() and ccp.truth_mask(root, "0001", "dress").sum() == 24
    assert ccp.truth_mask(root, "0001", "top").sum() == 12 and not ccp.truth_mask(root, "0001", "top")[2:6].any()
    assert ccp.truth_mask(root, "0001", "clothes").sum() == 36
    c = ccp.class_map(root, "0001")
    assert (c[2:6] == ccp.CLASSES.index("dress")).all() and (c[6:8] == ccp.CLASSES.index("top")).all()
    (root / "annotations" / "image-level").mkdir(parents=True)
    Image.new("RGB", (6, 8)).save(root / "photos" / "1010.jpg")
    savemat(root / "annotations" / "image-level" / "1010.mat", {"tags": np.array([[26], [19]], np.uint8)})
    row = ccp.load_tags(root).iloc[0]
    assert row["tags"] == ("hair", "jumper") and row["dress"] and not row["top"]


def test_missing_tree_and_bad_split(tmp_path):
    with pytest.raises(FileNotFoundError):
        ccp.load_ccp(tmp_path)
    root = _tree(tmp_path)
    with pytest.raises(ValueError):
        ccp.load_ccp(root, "test")
    t = ccp.load_ccp(root)
    assert (root / "photos" / "0001.jpg").samefile(t["image_path"].iloc[0])


def _tagged(tmp_path):
    root = _tree(tmp_path)
    (root / "annotations" / "image-level").mkdir(parents=True)
    tags = {1005: [0, 14, 19, 41, 21],   # null (background, on every photo), dress, hair, skin, heels
            1006: [5, 42, 2],            # blouse (a top), skirt, bag
            1007: [25, 48, 39],          # jeans (trousers), sweater (a top), shoes
            1008: [13, 40]}              # coat (a top), shorts (trousers)
    for n, ids in tags.items():
        Image.new("RGB", (6, 8)).save(root / "photos" / f"{n}.jpg")
        savemat(root / "annotations" / "image-level" / f"{n}.mat", {"tags": np.array(ids, np.uint8)[:, None]})
    savemat(root / "annotations" / "image-level" / "1009.mat", {"tags": np.array([[14]])})  # no photo: skipped
    return root


def test_image_level_tags(tmp_path):
    root = _tagged(tmp_path)
    t = ccp.load_tags(root)
    assert list(t["image_id"]) == ["ccp-1005", "ccp-1006", "ccp-1007", "ccp-1008"]
    assert t.loc[0, "tags"] == ("dress", "hair", "heels", "skin")
    assert ccp.image_tags(root, "ccp-1006") == ("bag", "blouse", "skirt")
    kinds = t.set_index("image_id")[list(ccp.GARMENTS)].astype(int).values.tolist()
    assert kinds == [[1, 0, 0, 0], [0, 1, 1, 0], [0, 1, 0, 1], [0, 1, 0, 1]]
    assert len(ccp.load_ccp(root)) == 3   # the pixel-level table is unchanged by the tagged photos


def test_image_level_tags_errors(tmp_path):
    root = _tagged(tmp_path)
    savemat(root / "annotations" / "image-level" / "1008.mat", {"tags": np.array([[99]])})
    with pytest.raises(ValueError, match="not in label_list"):
        ccp.image_tags(root, "1008")
    (root / "annotations" / "image-level" / "1007.mat").write_bytes(b"not a mat file")
    with pytest.raises(ValueError, match="image-level annotation"):
        ccp.image_tags(root, "1007")
    with pytest.raises(FileNotFoundError, match="image-level"):
        ccp.load_tags(tmp_path / "photos")


def test_suit_cape_bodysuit_and_denim_jackets_are_tops(tmp_path):
    """CCP's "suit" is the suit jacket, "cape" a cape worn like a coat, "bodysuit" worn as a top:
    tops in the truth and the parser's classes. "jeans" names the cloth: a separate jeans region
    on the upper body is a denim jacket (top); jeans on the legs stay trousers."""
    root = _tree(tmp_path)
    gt = np.zeros((20, 6), np.uint8)
    gt[0, :] = 19          # hair: the person starts here
    gt[2:6, :] = 46        # suit
    gt[6:8, :] = 10        # cape
    gt[8:9, :] = 6         # bodysuit
    gt[3:7, 0] = 25        # a denim jacket's sleeve: jeans, upper body
    gt[12:19, 1:5] = 25    # jeans on the legs
    gt[19, :] = 21         # heels: the person ends here
    savemat(root / "annotations" / "pixel-level" / "0001.mat", {"groundtruth": gt})
    top, trousers = ccp.truth_mask(root, "0001", "top"), ccp.truth_mask(root, "0001", "trousers")
    assert top[2:9].all() and top.sum() == 7 * 6
    assert trousers[12:19, 1:5].all() and trousers.sum() == 7 * 4
    assert ccp.truth_mask(root, "0001", "clothes").sum() == 7 * 6 + 7 * 4
    c = ccp.class_map(root, "0001")
    assert (c[2:9] == ccp.CLASSES.index("top")).all() and (c[12:19, 1:5] == ccp.CLASSES.index("trousers")).all()
    gt[7:12, 0] = 25       # the sleeve now reaches the jeans: one region, labelled as trousers
    gt[12:19, 0] = 25
    savemat(root / "annotations" / "pixel-level" / "0001.mat", {"groundtruth": gt})
    assert ccp.truth_mask(root, "0001", "trousers")[3:19, 0].all()
    (root / "annotations" / "image-level").mkdir(parents=True)
    Image.new("RGB", (6, 8)).save(root / "photos" / "1010.jpg")
    savemat(root / "annotations" / "image-level" / "1010.mat", {"tags": np.array([[46], [31]], np.uint8)})
    row = ccp.load_tags(root).iloc[0]
    assert row["tags"] == ("pants", "suit") and row["top"] and row["trousers"]
