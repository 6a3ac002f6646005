"""WavLM / HuBERT / wav2vec 2.0 embeddings through Hugging Face transformers (hub id or local folder).

``score.options.embedding.model`` names the model (``microsoft/wavlm-base-plus``) or a folder written by
``save_pretrained`` / ``huggingface-cli download --local-dir``; ``layer`` picks the hidden state (0 = the
CNN features, -1 = the last layer) and ``pooling`` pools it over the utterance's valid frames. Input
normalisation and attention masks follow the folder's feature-extractor config. Models that take no
attention mask (the base models) see every utterance alone, so padding never changes an embedding.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from curator.scoring._compat import guard_torchaudio
from curator.scoring.base import ScoringError
from curator.scoring.embeddings import EMBEDDERS, EmbeddingBackend, pool_frames

NORM_EPS = 1e-7  # the feature extractors' zero-mean unit-variance epsilon
WEIGHT_SUFFIXES = (".safetensors", ".bin")


@EMBEDDERS.register("transformers")
class TransformersSsl(EmbeddingBackend):
    def setup(self) -> None:
        guard_torchaudio()
        from transformers import AutoFeatureExtractor, AutoModel

        name = self.options.model
        if not name:
            raise ScoringError("score.options.embedding.model must name a hub id (e.g. microsoft/wavlm-base-plus) "
                               "or a local folder for the transformers backend")
        try:
            self.model = AutoModel.from_pretrained(name)
        except OSError as exc:
            raise ScoringError(
                f"cannot load transformers model '{name}': {exc}. Offline, download it once elsewhere "
                f"(huggingface-cli download {name} --local-dir models/ssl/<name>) and set "
                f"score.options.embedding.model to that folder") from exc
        self.model.eval().to(self.device)
        try:
            extractor = AutoFeatureExtractor.from_pretrained(name)
            self.normalize = bool(getattr(extractor, "do_normalize", False))
            self.use_mask = bool(getattr(extractor, "return_attention_mask", False))
        except OSError:  # no preprocessor_config.json: raw waveforms, no mask
            self.normalize, self.use_mask = False, False
        n_states = self.model.config.num_hidden_layers + 1
        if not -n_states <= self.options.layer < n_states:
            raise ScoringError(f"score.options.embedding.layer = {self.options.layer} is out of range for "
                               f"'{name}' ({n_states} hidden states: 0 .. {n_states - 1} or negative)")

    @property
    def dim(self) -> int:
        hidden = int(self.model.config.hidden_size)
        return hidden * (2 if self.options.pooling == "meanstd" else 1)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.device.startswith("cuda") and self.mixed_precision:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @torch.inference_mode()
    def _forward(self, wav: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = (torch.arange(wav.shape[1], device=wav.device)[None, :] < lengths[:, None]).long()
        if self.normalize:
            count = lengths[:, None].to(wav.dtype)
            mean = (wav * mask).sum(1, keepdim=True) / count
            var = (((wav - mean) ** 2) * mask).sum(1, keepdim=True) / count
            wav = (wav - mean) / torch.sqrt(var + NORM_EPS) * mask
        with self._autocast():
            out = self.model(wav, attention_mask=mask if self.use_mask else None, output_hidden_states=True)
        hidden = out.hidden_states[self.options.layer].float()
        frames = self.model._get_feat_extract_output_lengths(lengths)
        return pool_frames(hidden, frames, self.options.pooling)

    def embed(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        wav = torch.from_numpy(x).to(self.device)
        lens = torch.from_numpy(lengths).to(self.device)
        if self.use_mask:
            return self._forward(wav, lens).cpu().numpy()
        return torch.cat([self._forward(wav[i:i + 1, : int(n)], lens[i:i + 1])
                          for i, n in enumerate(lengths)]).cpu().numpy()

    def settings(self) -> dict[str, Any]:
        """A local folder is identified by its config and weight files' sizes, not by its path."""
        folder = Path(self.options.model or "")
        if not folder.is_dir():
            return {"model": self.options.model}
        config = folder / "config.json"
        weights = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.suffix in WEIGHT_SUFFIXES}
        digest = hashlib.sha256(config.read_bytes()).hexdigest() if config.is_file() else None
        return {"model": folder.name, "config_sha256": digest, "weights": weights}
