"""s3prl upstreams (``wavlm_base_plus``, ``hubert_base``, ... or ``*_local`` with a checkpoint) when s3prl is installed.

``score.options.embedding.model`` is the upstream name, ``checkpoint`` its local file or URL (s3prl caches
hub downloads under ~/.cache/s3prl), ``layer`` and ``pooling`` as for transformers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from curator.scoring._compat import guard_torchaudio
from curator.scoring.base import ScoringError
from curator.scoring.embeddings import EMBEDDERS, EmbeddingBackend, pool_frames


@EMBEDDERS.register("s3prl")
class S3prlSsl(EmbeddingBackend):
    def setup(self) -> None:
        if not self.options.model:
            raise ScoringError("score.options.embedding.model must name an s3prl upstream (e.g. wavlm_base_plus)")
        guard_torchaudio()
        try:
            from s3prl.nn import S3PRLUpstream
        except Exception as exc:  # s3prl missing, or its hub import failing on the installed torchaudio
            raise ScoringError(f"the s3prl embedding backend needs a working 's3prl' install "
                               f"(pip install s3prl): {type(exc).__name__}: {exc}") from exc
        if self.options.model not in S3PRLUpstream.available_names():
            raise ScoringError(f"unknown s3prl upstream '{self.options.model}'; see S3PRLUpstream.available_names()")
        self.model = S3PRLUpstream(self.options.model, path_or_url=self.options.checkpoint).eval().to(self.device)
        self._dim = int(self.model.hidden_sizes[self.options.layer])

    @property
    def dim(self) -> int:
        return self._dim * (2 if self.options.pooling == "meanstd" else 1)

    @torch.inference_mode()
    def embed(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        wav = torch.from_numpy(x).to(self.device)
        lens = torch.from_numpy(lengths).to(self.device)
        hidden, frames = self.model(wav, lens)
        return pool_frames(hidden[self.options.layer].float(), frames[self.options.layer],
                           self.options.pooling).cpu().numpy()

    def settings(self) -> dict[str, Any]:
        return {"upstream": self.options.model}
