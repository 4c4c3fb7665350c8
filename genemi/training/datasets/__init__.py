"""Training data, one module per format: ``--dataset-type`` name -> builder of the loader (see docs/training.md).

Each builder takes a :class:`~genemi.training.datasets.base.DataRequest` (the data options, the mining spec,
transform, tokenizer, batch size, seed, rank and world size) and returns
:class:`~genemi.training.datasets.base.TrainData`, whose ``steps_per_epoch`` is the same on every rank. Indexed
formats build a :class:`~genemi.training.datasets.base.PairTable` and share the map-style path of
:mod:`genemi.training.datasets.mined`; ``webdataset`` streams shards (:mod:`genemi.training.datasets.webdataset`).
The registry (:mod:`.registry`) imports a reader only when it is used.
"""

from genemi.training.datasets.registry import DATASET_TYPES, build_train_data, check_dataset_type

__all__ = ["DATASET_TYPES", "build_train_data", "check_dataset_type"]
