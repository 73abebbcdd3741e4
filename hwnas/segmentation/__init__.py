"""Semantic segmentation for supernet search (SqueezeNAS): data, networks, mIoU, search.

An encoder from the ``mobilenet`` space plus a light LR-ASPP-like head (:mod:`.model`), the
offline synthetic ``shapes`` dataset and torchvision's VOC / Cityscapes when present
(:mod:`.data`), mIoU (:mod:`.metrics`), the supernet task and plain training (:mod:`.task`),
the metric provider (:mod:`.provider`) and :func:`search_segmentation` (:mod:`.search`).
"""

#: ``--dataset`` prefix that selects a segmentation dataset (``segmentation:shapes``); here,
#: so that checking a dataset name imports nothing heavy.
DATASET_PREFIX = "segmentation:"
