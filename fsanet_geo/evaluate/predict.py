"""Run a detector over a dataset: COCO results in original image pixels
(:func:`predict_dataset`), scored with the AI-TOD protocol (:func:`evaluate_model`, used by
training's validation, and :func:`evaluate_checkpoint`, used by ``fsanet eval --weights``).

Each image is predicted at native size; an image larger than the model's tile
(``config.input_size``) goes through ``fsanet detect``'s tiling and seam merge
(:mod:`fsanet_geo.evaluate.tiled`), so it is scored as detect would find its objects."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from torch import nn

from fsanet_geo.data.dataset import build_dataset
from fsanet_geo.device import resolve_device
from fsanet_geo.errors import ConfigError, DatasetError
from fsanet_geo.evaluate.aitod_protocol import EvalResult, evaluate_coco, save_json
from fsanet_geo.evaluate.tiled import TiledImagePredictor
from fsanet_geo.geo.settings import DetectSettings
from fsanet_geo.model.files.checkpoint import load_inference_model


def predict_dataset(
    model: nn.Module,
    dataset: Any,
    *,
    batch_size: int = 2,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
    num_workers: int = 0,
    tiling: DetectSettings | None = None,
) -> list[dict[str, Any]]:
    """Detections of ``model`` on every item of ``dataset`` as COCO results.

    Args:
        model: a detector whose eval forward takes ``list[Tensor[C, H, W]]`` and returns
            ``[{"boxes": Tensor[N, 4] xyxy input pixels, "scores": Tensor[N],
            "labels": Tensor[N] 0-based}]``.
        dataset: items ``(image Tensor[C, H, W], target)`` with ``target["image_id"]`` (COCO id)
            and ``target["scale"]`` (transformed / original size); ``dataset.cat_ids`` maps a
            label index to its COCO category id.
        batch_size: images per forward pass.
        device: ``auto | cpu | cuda | cuda:N``.
        progress: called as ``progress(done_images, total_images)`` after each batch.
        num_workers: DataLoader worker processes (0 loads in this process).
        tiling: detect's settings for images larger than a tile (tile size: the model's
            ``config.input_size`` unless set; overlap and merge: detect's defaults). Models
            without a ``config`` see every image whole.

    Returns:
        ``[{"image_id", "category_id", "bbox": [x, y, w, h] original pixels, "score"}]``.
        The model is left in eval mode.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    cat_ids: Sequence[int] | None = getattr(dataset, "cat_ids", None)
    if cat_ids is None:
        raise DatasetError("the dataset has no 'cat_ids' (label index -> COCO category id)")
    model_classes = getattr(model, "class_names", None)
    if model_classes is not None and len(model_classes) != len(cat_ids):
        raise DatasetError(
            f"the model predicts {len(model_classes)} classes but the dataset has {len(cat_ids)} categories"
        )
    dev = resolve_device(device)
    model.to(dev)
    model.eval()
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=_as_lists,
    )
    tiler = TiledImagePredictor(model, dev, tiling) if hasattr(model, "config") or tiling else None
    total = len(dataset)
    done = 0
    results: list[dict[str, Any]] = []
    with torch.inference_mode():
        for images, targets in loader:
            outputs = _predict_batch(model, images, tiler, dev)
            for out, target in zip(outputs, targets):
                results.extend(_to_coco(out, target, cat_ids))
            done += len(images)
            if progress is not None:
                progress(done, total)
    return results


def _predict_batch(
    model: nn.Module, images: list[torch.Tensor], tiler: TiledImagePredictor | None, device: torch.device
) -> list[dict[str, torch.Tensor]]:
    """Outputs for ``images`` ([C, H, W] each) in order: those that fit a tile in one forward
    pass at native size, larger ones tile by tile through ``tiler``."""
    large = [tiler is not None and tiler.needs_tiles(im) for im in images]
    outputs: list[dict[str, torch.Tensor] | None] = [None] * len(images)
    whole = [i for i, big in enumerate(large) if not big]
    if whole:
        for i, out in zip(whole, model([images[i].to(device) for i in whole])):
            outputs[i] = out
    for i, big in enumerate(large):
        if big:
            assert tiler is not None
            outputs[i] = tiler(images[i])
    return [out for out in outputs if out is not None]


def _as_lists(batch: list[tuple[torch.Tensor, dict[str, Any]]]) -> tuple[list[torch.Tensor], list[dict[str, Any]]]:
    """Collate ``(image, target)`` items into ``(list[image], list[target])``."""
    images, targets = zip(*batch)
    return list(images), list(targets)


def _to_coco(
    output: dict[str, torch.Tensor], target: dict[str, Any], cat_ids: Sequence[int]
) -> list[dict[str, Any]]:
    """One image's detections: xyxy in transformed pixels -> xywh in original pixels."""
    scale = float(target.get("scale", 1.0))
    if not scale > 0:
        raise DatasetError(f"image {target.get('image_id')!r} has a non-positive scale {scale}")
    image_id = target["image_id"]
    image_id = int(image_id.item()) if isinstance(image_id, torch.Tensor) else int(image_id)
    boxes = output["boxes"].detach().to("cpu", torch.float64).reshape(-1, 4) / scale
    orig = target.get("orig_size")
    if orig is not None:
        h0, w0 = (float(v) for v in orig)
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0.0, w0)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0.0, h0)
    scores = output["scores"].detach().to("cpu", torch.float64).reshape(-1).tolist()
    labels = output["labels"].detach().to("cpu").reshape(-1).tolist()
    results = []
    for (x1, y1, x2, y2), score, label in zip(boxes.tolist(), scores, labels):
        if not 0 <= label < len(cat_ids):
            raise DatasetError(
                f"the model predicted label {label} but the dataset has {len(cat_ids)} classes"
            )
        results.append(
            {
                "image_id": image_id,
                "category_id": int(cat_ids[label]),
                "bbox": [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)],
                "score": float(score),
            }
        )
    return results


def evaluate_model(
    model: nn.Module,
    dataset: Any,
    *,
    batch_size: int = 2,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
    max_dets: int = 1500,
    num_workers: int = 0,
    save_detections: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    tiling: DetectSettings | None = None,
) -> EvalResult:
    """Run ``model`` over ``dataset`` and score it with the AI-TOD protocol.

    ``dataset`` must also expose ``coco`` (its ground-truth COCO dict), as
    ``fsanet_geo.data.DetectionDataset`` does. ``save_detections`` also writes the COCO
    results (a JSON list, original pixels) there before scoring; an existing file is
    replaced only with ``overwrite``. See :func:`predict_dataset` for the rest.
    """
    gt = getattr(dataset, "coco", None)
    if gt is None:
        raise DatasetError("the dataset has no 'coco' ground truth to score against")
    gt = getattr(gt, "dataset", gt)  # a pycocotools COCO object holds the dict as .dataset
    dets = predict_dataset(model, dataset, batch_size=batch_size, device=device, progress=progress,
                           num_workers=num_workers, tiling=tiling)
    if save_detections is not None:
        save_json(dets, save_detections, overwrite=overwrite)
    return evaluate_coco(gt, dets, max_dets=max_dets)


def evaluate_checkpoint(
    weights: str | os.PathLike[str],
    dataset_kind: Literal["aitod", "coco"],
    *,
    data_root: str | os.PathLike[str] | None = None,
    split: str = "test",
    ann: str | os.PathLike[str] | None = None,
    images: str | os.PathLike[str] | None = None,
    resize_to: int | None = None,
    tiling: DetectSettings | None = None,
    batch_size: int = 2,
    device: str | torch.device = "auto",
    progress: Callable[[int, int], None] | None = None,
    max_dets: int = 1500,
    save_detections: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> EvalResult:
    """Load the checkpoint ``weights``, read the dataset (``aitod``: ``data_root`` and
    ``split``, or ``ann`` + ``images``; ``coco``: ``ann`` + ``images``) at native size (or
    resized so the longer side is ``resize_to`` pixels, with a warning), and score it with
    :func:`evaluate_model` (same options; ``tiling`` as in :func:`predict_dataset`)."""
    dev = resolve_device(device)
    model = load_inference_model(weights, device=dev)
    dataset = build_dataset(dataset_kind, data_root=data_root, split=split, ann=ann, images=images,
                            train=False, input_size=model.config.input_size, resize_to=resize_to)
    return evaluate_model(model, dataset, batch_size=batch_size, device=dev, progress=progress,
                          max_dets=max_dets, save_detections=save_detections, overwrite=overwrite,
                          tiling=tiling)
