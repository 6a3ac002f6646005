"""``ssl_embed``: one fixed-size float32 vector per utterance from the configured embedding backend."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pyarrow as pa

from curator.scoring.base import SCORERS, AudioBatch, Scorer
from curator.scoring.embeddings import EMBEDDERS, EmbeddingBackend, EmbeddingOptions


@SCORERS.register("embedding")
class EmbeddingScorer(Scorer):
    name = "embedding"
    outputs = ("ssl_embed",)
    gpu_capable = True
    Options = EmbeddingOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        backend_cls = EMBEDDERS.get(self.options.backend)
        self.backend: EmbeddingBackend = backend_cls(self.options, self.device, self.mixed_precision)

    def setup(self) -> None:
        self.backend.setup()

    def columns(self) -> dict[str, pa.DataType]:
        return {"ssl_embed": pa.list_(pa.float32(), self.backend.dim)}

    def score_batch(self, batch: AudioBatch) -> dict[str, np.ndarray]:
        x, lengths = batch.padded(self.options.signal, self.options.sample_rate)
        return {"ssl_embed": self.backend.embed(x, lengths).astype(np.float32)}

    def settings(self) -> dict[str, Any]:
        return {"options": dataclasses.asdict(self.options), **self.backend.settings()}
