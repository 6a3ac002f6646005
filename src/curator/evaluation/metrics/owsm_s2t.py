"""OWSM v3.1 speech recognition, the official URGENT 2026 CAcc model, from a local ESPnet download.

The official script (``evaluation_metrics/calculate_wer.py`` with ``owsm_utils.owsm_predict``) loads
``Speech2Text.from_pretrained("espnet/owsm_v3.1_ebf", task_sym="<asr>", beam_size=5, predict_time=False)`` and, per
utterance at 16 kHz: pads or trims the signal to 30 s, sets the length limit to ``min(300, int(seconds * 10))``
tokens, decodes with the primer ``<sop> <sos> <lang> <asr> <notimestamps>`` (the empty previous text the script
passes adds ``<sop>``), and keeps the best hypothesis's text without special tokens. Where the row's language is
``none`` it first identifies it with ``Speech2Language`` (the decoder's first step after ``<sos>``, restricted to
the language tokens). CER then compares that text with the transcript, both through Whisper's basic normaliser.

ESPnet is not a dependency here (see :mod:`.rawnet3` for why), so this module rebuilds that inference in torch from
the download's ``config.yaml`` (no ESPnet code copied):

- ``ESPnetS2TModel.encode``: the frontend and normalisation of :mod:`.owsm_ctc`, conv2d subsampling by 4 with
  absolute positions, E-Branchformer blocks (:class:`.owsm_ctc.EBranchformerBlock` without cross-attention), a
  final layer norm;
- the Transformer decoder (pre-norm blocks of causal self-attention, attention to the encoder output and a ReLU
  feed-forward; the output layer and log-softmax), run one step at a time with ESPnet's cache of every layer's
  output;
- ``BatchBeamSearch`` as ``Speech2Text`` sets it up with ``ctc_weight=0``: the decoder's scores plus the filter that
  forbids timestamp tokens, the running hypotheses' scores added, the top ``beam`` of all (hypothesis, token) pairs
  by ``torch.topk`` (so ties break as ESPnet's), a hypothesis that emits ``<eos>`` set aside, ``<eos>`` appended to
  every running one at the last step, the best set-aside hypothesis by a stable sort; ESPnet's end detection where
  the length limit is 0 (signals under 0.1 s);
- the text: tokens after ``<sos>`` without ``<blank>`` and without ``<...>`` tokens, joined by the download's
  sentencepiece model (``decode_pieces``).

Signals over 30 s get the official script's long-form decoding (``Speech2Text.decode_long`` with
``end_time_threshold="<29.00>"``, no previous text, a 300-token limit; :meth:`Recognizer.long_form`): 30 s windows
decoded with timestamps (the primer ``<sos> <lang> <asr>`` and ESPnet's ``ScoreFilter`` rules: a timestamp first,
paired and increasing timestamps, ``<eos>`` only after a closed pair), the window moved to the last complete
utterance's end (or the incomplete last one's start), and the text the script writes, one ``[mm:ss.mmm -->
mm:ss.mmm] text`` line per utterance. Whisper's normaliser then takes out ``[start -->`` but, stopping at the
arrow's ``>``, leaves the end time's digits (``00 20 000``) in the hypothesis, so the official CER of a long row
counts them as insertions; the rebuild keeps that, as the script has it. Where ``decode_long`` raises
(a window without timestamps, a token list without ``<29.00>``) the script falls back to the first 30 s decoded
as a short signal, and so does :meth:`Recognizer.transcribe`. The language of a ``none`` row is identified from
the first 30 s in both cases.

The attention to the encoder output projects that output once per utterance where ESPnet projects it again for
every hypothesis at every step (the same product of the same rows): the decoding is about beam-size times cheaper.
Equality with ESPnet's own inference: ``benchmarks/check_owsm_s2t.py`` (needs an ESPnet install of its own).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from curator.datasets.labels import PLACEHOLDER_LANGUAGES, language_label
from curator.evaluation.metrics import espnet_files
from curator.evaluation.metrics.owsm_ctc import (
    Attention,
    ConvSubsampling,
    Ctc,
    EBranchformerBlock,
    FeedForward,
    Frontend,
    OwsmCtcConfig,
    _layer_norm,
    add_positions,
    encoder_settings,
    frontend_settings,
    normalizer,
    tokens_of,
)

LOG = logging.getLogger(__name__)
SR = 16000
MODEL = "OWSM v3.1"
HF_MODEL = "espnet/owsm_v3.1_ebf"
BEAM = 5
"""The official script's beam size."""
TOKENS_PER_SECOND = 10
MAX_TOKENS = 300
"""The official length limit: ``min(MAX_TOKENS, int(seconds * TOKENS_PER_SECOND))`` tokens; the long-form windows
get ``MAX_TOKENS`` (the script's ``maxlenratio = -300``)."""
END_TIME_THRESHOLD = "<29.00>"
"""The official long-form call's ``end_time_threshold``: a window's last utterance ending after it is taken as cut
off, and the next window starts at its beginning."""
SKIP_LAST_CHUNK_SECONDS = 0.2
"""``decode_long``'s ``skip_last_chunk_threshold``: a last window shorter than this is not decoded."""
TASK_SYM = "<asr>"
END_DETECT_HYPS = 3
END_DETECT_MARGIN = math.log(1 * math.exp(-10))
"""ESPnet's ``end_detect`` (used where the length limit is 0): stop once the best ended hypothesis of each of the
last ``END_DETECT_HYPS`` lengths scores more than ``-END_DETECT_MARGIN`` below the best ended one."""


@dataclass(frozen=True)
class OwsmS2TConfig:
    """The hyperparameters of the inference graph; the defaults are espnet/owsm_v3.1_ebf's decoder and
    preprocessing (its recipe ``egs2/owsm_v3.1/s2t1``). ``encoder`` holds the token list, the frontend, the
    normalisation and the E-Branchformer blocks (no cross-attention, no intermediate CTC)."""

    encoder: OwsmCtcConfig
    decoder_heads: int = 16
    decoder_units: int = 4096
    decoder_blocks: int = 18
    speech_seconds: float = 30.0
    sym_sos: str = "<sos>"
    sym_eos: str = "<eos>"
    sym_sop: str = "<sop>"
    sym_notime: str = "<notimestamps>"
    first_time: str = "<0.00>"
    last_time: str = "<30.00>"
    first_lang: str = "<abk>"
    last_lang: str = "<zul>"
    speech_resolution: float = 0.02
    """Seconds between consecutive timestamp tokens (``preprocessor_conf.speech_resolution``)."""

    def __post_init__(self) -> None:
        if any(self.encoder.cross_attention) or self.encoder.interctc_layers:
            raise ValueError("the OWSM v3.1 encoder has no cross-attention and no intermediate CTC")

    @property
    def token_list(self) -> tuple[str, ...]:
        return self.encoder.token_list


class Encoder(nn.Module):
    def __init__(self, cfg: OwsmCtcConfig) -> None:
        super().__init__()
        self.embed = ConvSubsampling(cfg.n_mels, cfg.size, layers=2, sequential_out=True)
        self.encoders = nn.ModuleList(EBranchformerBlock(cfg, False) for _ in range(cfg.num_blocks))
        self.after_norm = _layer_norm(cfg.size)
        self.max_positions = cfg.max_positions

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        x = add_positions(self.embed(feats), self.max_positions)
        for block in self.encoders:
            x = block(x, x)
        return self.after_norm(x)


def causal_mask(length: int, device: torch.device) -> torch.Tensor:
    """ESPnet's ``subsequent_mask``: (1, length, length), True where a position may attend."""
    return torch.tril(torch.ones(length, length, dtype=torch.bool, device=device)).unsqueeze(0)


class SourceAttention(Attention):
    """Attention to the encoder output, its keys and values projected once per utterance (:meth:`project`)."""

    def project(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = memory.size(0)
        k = self.linear_k(memory).view(b, -1, self.h, self.d_k).transpose(1, 2)
        v = self.linear_v(memory).view(b, -1, self.h, self.d_k).transpose(1, 2)
        return k, v

    def attend(self, query: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        b = query.size(0)
        k, v = (t.expand(b, *t.shape[1:]) for t in kv)
        q = self.linear_q(query).view(b, -1, self.h, self.d_k).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.d_k)
        x = torch.matmul(torch.softmax(scores, dim=-1), v)
        return self.linear_out(x.transpose(1, 2).contiguous().view(b, -1, self.h * self.d_k))


class DecoderLayer(nn.Module):
    """ESPnet's pre-norm ``DecoderLayer``; with a cache (the layer's output at the earlier positions) only the last
    position is computed and appended to it."""

    def __init__(self, size: int, heads: int, units: int) -> None:
        super().__init__()
        self.self_attn, self.src_attn = Attention(heads, size), SourceAttention(heads, size)
        self.feed_forward = FeedForward(size, units, "relu")
        self.norm1, self.norm2, self.norm3 = _layer_norm(size), _layer_norm(size), _layer_norm(size)

    def forward(self, x: torch.Tensor, source: tuple[torch.Tensor, torch.Tensor], cache: torch.Tensor | None,
                mask: torch.Tensor) -> torch.Tensor:
        normed = self.norm1(x)
        if cache is None:
            y = x + self.self_attn(normed, normed, mask)
        else:  # the last position may attend to every position: no mask
            y = x[:, -1:] + self.self_attn(normed[:, -1:], normed)
        y = y + self.src_attn.attend(self.norm2(y), source)
        y = y + self.feed_forward(self.norm3(y))
        return y if cache is None else torch.cat([cache, y], dim=1)


class Decoder(nn.Module):
    def __init__(self, cfg: OwsmS2TConfig) -> None:
        super().__init__()
        size, vocab = cfg.encoder.size, len(cfg.token_list)
        self.embed = nn.Sequential(nn.Embedding(vocab, size))
        self.decoders = nn.ModuleList(DecoderLayer(size, cfg.decoder_heads, cfg.decoder_units)
                                      for _ in range(cfg.decoder_blocks))
        self.after_norm = _layer_norm(size)
        self.output_layer = nn.Linear(size, vocab)

    def sources(self, memory: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each layer's keys and values of the encoder output (1, frames, size)."""
        return [layer.src_attn.project(memory) for layer in self.decoders]

    def step(self, yseq: torch.Tensor, sources: list[tuple[torch.Tensor, torch.Tensor]],
             cache: list[torch.Tensor] | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """ESPnet's ``forward_one_step``: log-probabilities (hyps, vocab) of the token after ``yseq`` (hyps, length)
        and the new cache."""
        x = add_positions(self.embed(yseq))
        mask = causal_mask(yseq.size(1), yseq.device)
        new_cache = []
        for i, layer in enumerate(self.decoders):
            x = layer(x, sources[i], None if cache is None else cache[i], mask)
            new_cache.append(x)
        return torch.log_softmax(self.output_layer(self.after_norm(x[:, -1])), dim=-1), new_cache


class OwsmS2T(nn.Module):
    """The inference graph of ESPnet's ``ESPnetS2TModel`` with ``Speech2Text``'s beam search (:meth:`decode`)."""

    def __init__(self, cfg: OwsmS2TConfig) -> None:
        super().__init__()
        self.cfg = cfg
        enc = cfg.encoder
        self.frontend = Frontend(enc)
        self.normalize = normalizer(enc)
        self.encoder = Encoder(enc)
        self.decoder = Decoder(cfg)
        self.ctc = Ctc(enc.size, len(cfg.token_list))  # in the model file; Speech2Text gives it weight 0 here
        self.token_id = {t: i for i, t in enumerate(cfg.token_list)}
        needed = (cfg.sym_sos, cfg.sym_eos, cfg.sym_sop, cfg.sym_notime, cfg.first_time, cfg.last_time,
                  cfg.first_lang, cfg.last_lang, enc.sym_blank, TASK_SYM)
        missing = [s for s in needed if s not in self.token_id]
        if missing:
            raise ValueError(f"the token list has no {', '.join(missing)} (needed by the official CAcc call)")
        self.sos, self.eos = self.token_id[cfg.sym_sos], self.token_id[cfg.sym_eos]
        self.notime = self.token_id[cfg.sym_notime]
        self.first_time, self.last_time = self.token_id[cfg.first_time], self.token_id[cfg.last_time]
        lo, hi = self.token_id[cfg.first_lang], self.token_id[cfg.last_lang]
        self.languages = range(lo, hi + 1)
        filt = torch.zeros(len(cfg.token_list))
        filt[self.token_id[cfg.first_time]:self.token_id[cfg.last_time] + 1] = -np.inf
        self.register_buffer("time_filter", filt, persistent=False)

    @property
    def speech_samples(self) -> int:
        return int(SR * self.cfg.speech_seconds)

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """Encoder output (1, frames, size) of one waveform (1, samples), padded with zeros or trimmed to
        ``speech_seconds`` first, as ``Speech2Text`` does."""
        n = self.speech_samples
        wav = wav[:, :n] if wav.size(1) >= n else nn.functional.pad(wav, (0, n - wav.size(1)))
        feats = self.frontend(wav)
        if self.normalize is not None:
            feats = self.normalize(feats)
        return self.encoder(feats)

    def detect_language(self, memory: torch.Tensor) -> str:
        """``Speech2Language``: the language token the decoder's step after ``<sos>`` ranks first."""
        logp, _ = self.decoder.step(torch.tensor([[self.sos]], device=memory.device), self.decoder.sources(memory),
                                    None)
        lo = self.languages.start
        prob = torch.softmax(logp[0, lo:self.languages.stop], -1)
        return self.cfg.token_list[lo + int(torch.topk(prob, 1).indices[0])]

    def primer(self, lang_sym: str) -> list[int]:
        """``<sop>`` (the official script's empty previous text), ``<sos>``, language, task, ``<notimestamps>``."""
        return [self.token_id[self.cfg.sym_sop], self.sos, self.token_id[lang_sym], self.token_id[TASK_SYM],
                self.token_id[self.cfg.sym_notime]]

    def timed_primer(self, lang_sym: str) -> list[int]:
        """``<sos>``, language, task: a long-form window (no previous text, timestamps predicted)."""
        return [self.sos, self.token_id[lang_sym], self.token_id[TASK_SYM]]

    def time_rules(self, yseq: torch.Tensor) -> torch.Tensor:
        """ESPnet's ``ScoreFilter`` for each running hypothesis (n, vocab): 0 where a token may follow, -inf where
        not. With ``<notimestamps>`` in the sequence no timestamp; right after ``<sos> <lang> <task>`` only a
        timestamp; inside an utterance (an odd count of timestamps) no ``<eos>`` and only a later timestamp; after a
        closing timestamp only a timestamp at or after it, or ``<eos>``; text after a closed pair nothing."""
        first, last = self.first_time, self.last_time
        out = torch.zeros(yseq.size(0), len(self.cfg.token_list), device=yseq.device)
        for b, y in enumerate(yseq.tolist()):
            row = out[b]
            if self.notime in y:
                row[first:last + 1] = -np.inf
            elif y[-3] == self.sos:
                row[:first] = -np.inf
                row[last + 1:] = -np.inf
            else:
                times = [t for t in y if first <= t <= last]
                if len(times) % 2 == 1:
                    row[self.eos] = -np.inf
                    row[first:times[-1] + 1] = -np.inf
                elif first <= y[-1] <= last:
                    row[:y[-1]] = -np.inf
                    row[last + 1:] = -np.inf
                    row[self.eos] = 0.0
                else:
                    row[:] = -np.inf
        return out

    def decode(self, memory: torch.Tensor, primer: list[int], maxlen: int,
               beam: int = BEAM) -> tuple[list[int], float]:
        """The best hypothesis (token ids, primer and final ``<eos>`` included; its score) of the batch beam search over
        ``memory`` (1, frames, size); ``maxlen`` steps at most (0: as many as frames, with end detection). A primer
        with ``<notimestamps>`` forbids timestamps throughout; one without predicts them (:meth:`time_rules`)."""
        timed = self.notime not in primer
        end_detection = maxlen == 0
        maxlen = memory.size(1) if end_detection else maxlen
        sources = self.decoder.sources(memory)
        vocab = len(self.cfg.token_list)
        yseq = torch.tensor([primer], device=memory.device)
        score = torch.zeros(1, device=memory.device)
        cache: list[torch.Tensor] | None = None
        ended: list[tuple[float, torch.Tensor]] = []
        for i in range(maxlen):
            logp, cache = self.decoder.step(yseq, sources, cache)
            weighted = torch.zeros(yseq.size(0), vocab, device=memory.device)
            weighted += logp
            weighted += self.time_rules(yseq) if timed else self.time_filter
            weighted += score.unsqueeze(1)
            top = weighted.view(-1).topk(beam)[1]
            prev, token = torch.div(top, vocab, rounding_mode="trunc"), top % vocab
            score = weighted[prev, token]
            yseq = torch.cat([yseq[prev], token.unsqueeze(1)], dim=1)
            cache = [c[prev] for c in cache]
            if i == maxlen - 1:
                yseq = torch.cat([yseq, torch.full((yseq.size(0), 1), self.eos, device=yseq.device)], dim=1)
            is_eos = yseq[:, -1] == self.eos
            ended += [(float(score[b]), yseq[b]) for b in torch.nonzero(is_eos).view(-1).tolist()]
            keep = torch.nonzero(~is_eos).view(-1)
            yseq, score, cache = yseq[keep], score[keep], [c[keep] for c in cache]
            if end_detection and _end_detected(ended, i):
                break
            if len(keep) == 0:
                break
        best_score, best = sorted(ended, key=lambda e: e[0], reverse=True)[0]
        return best.tolist(), best_score

    def result_ids(self, yseq: list[int]) -> list[int]:
        """``Speech2Text``'s ``token_int``: the ids after ``<sos>``, before the final ``<eos>``, without ``<blank>``."""
        ids = yseq[:-1]
        blank = self.token_id[self.cfg.encoder.sym_blank]
        return [i for i in ids[ids.index(self.sos) + 1:] if i != blank]

    def text_tokens(self, yseq: list[int]) -> list[str]:
        """The tokens ``Speech2Text`` joins into its text without special tokens: :meth:`result_ids` without
        ``<...>`` tokens."""
        tokens = [self.cfg.token_list[i] for i in self.result_ids(yseq)]
        return [t for t in tokens if not (t[0] == "<" and t[-1] == ">")]


def _end_detected(ended: list[tuple[float, torch.Tensor]], i: int) -> bool:
    """ESPnet's ``end_detect`` over the set-aside hypotheses at step ``i`` (lengths count the primer)."""
    if not ended:
        return False
    best = max(s for s, _ in ended)
    count = 0
    for m in range(END_DETECT_HYPS):
        same = [s for s, y in ended if len(y) == i - m]
        if same and max(same) - best < END_DETECT_MARGIN:
            count += 1
    return count == END_DETECT_HYPS


class LongFormError(ValueError):
    """Where ESPnet's ``decode_long`` raises (and the official script falls back to the first 30 s)."""


def format_timestamp(seconds: float) -> str:
    """Whisper's ``format_timestamp`` as the official ``owsm_utils`` uses it: ``[hh:]mm:ss.mmm``."""
    ms = round(seconds * 1000.0)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1_000)
    return f"{f'{hours:02d}:' if hours > 0 else ''}{minutes:02d}:{secs:02d}.{ms:03d}"


def max_tokens(samples: int) -> int:
    """The official script's length limit for a signal of ``samples`` at 16 kHz (0: end detection)."""
    return min(MAX_TOKENS, int((samples / SR) * TOKENS_PER_SECOND))


class Recognizer:
    """An OWSM v3.1 download ready to transcribe: the model and its sentencepiece model."""

    def __init__(self, model: OwsmS2T, pieces: Any, source_config: Path, source_model: Path) -> None:
        self.model, self.pieces = model, pieces
        self.source_config, self.source_model = source_config, source_model
        language_ids: dict[str, str] = {}
        for i in model.languages:
            code, known = language_label(model.cfg.token_list[i].strip("<>"))
            if known:
                language_ids.setdefault(code, model.cfg.token_list[i])
        self.language_tokens = language_ids

    def language_token(self, language: str | None) -> str | None:
        """The model's token for a row's language (``en``, ``eng``, ...); None where the model has none."""
        code, _ = language_label(language) if language else ("none", True)
        return self.language_tokens.get(code)

    def transcribe(self, x: np.ndarray, language: str | None, device: str = "cpu") -> str | None:
        """The official text of one 16 kHz signal for a row of ``language`` (``none``, ``unknown`` or None: the
        model identifies it from the first 30 s); a signal over ``speech_seconds`` is decoded long-form
        (:meth:`long_form`; where that fails, its first 30 s as the script falls back). None for a language the
        model has no token for."""
        model = self.model
        identify = not language or language_label(language)[0] in PLACEHOLDER_LANGUAGES.values()
        lang_sym = None if identify else self.language_token(language)
        if not identify and lang_sym is None:
            return None
        wav = torch.as_tensor(np.asarray(x, np.float32), device=device)[None]
        with torch.inference_mode():
            memory = model.encode(wav)
            if identify:
                lang_sym = model.detect_language(memory)
            if len(x) > model.speech_samples:
                try:
                    return self.long_form(wav, lang_sym, memory)
                except LongFormError as exc:  # the official script prints its fallback too
                    LOG.warning("OWSM v3.1 long-form decoding of a %.1f s signal failed (%s): its first %g s decoded "
                                "instead, as the official script falls back", len(x) / SR, exc, model.cfg.speech_seconds)
            yseq, _ = model.decode(memory, model.primer(lang_sym), max_tokens(len(x)))
        return self.pieces.decode_pieces(model.text_tokens(yseq))

    def long_form(self, wav: torch.Tensor, lang_sym: str, first_window: torch.Tensor | None = None) -> str:
        """``Speech2Text.decode_long`` as the official script calls it, formatted as the script formats it: one
        ``[start --> end] text`` line per utterance. ``wav`` (1, samples) at 16 kHz; ``first_window``: its encoder
        output at offset 0 where the caller has it (``encode`` keeps the first 30 s: the same input). LongFormError
        where ESPnet's would raise, or would never advance."""
        model, cfg = self.model, self.model.cfg
        if END_TIME_THRESHOLD not in model.token_id:
            raise LongFormError(f"the token list has no {END_TIME_THRESHOLD}")
        threshold, first = model.token_id[END_TIME_THRESHOLD], model.first_time
        segment, resolution = model.speech_samples, cfg.speech_resolution
        utterances: list[tuple[float, float, str]] = []
        offset = 0
        while offset < wav.size(1):
            chunk = wav[:, offset:offset + segment]
            if chunk.size(1) / SR < SKIP_LAST_CHUNK_SECONDS:
                offset += segment
                continue
            memory = first_window if offset == 0 and first_window is not None else model.encode(chunk)
            yseq, _ = model.decode(memory, model.timed_primer(lang_sym), MAX_TOKENS)
            ids = model.result_ids(yseq)[2:]  # without the language and the task
            pos = [k for k, t in enumerate(ids) if first <= t <= model.last_time]
            if len(pos) == 1:  # only a start time
                ids.append(model.last_time)
                pos.append(len(ids) - 1)
            if not pos:
                raise LongFormError("a window decoded without timestamps")
            if len(pos) % 2 == 0:
                if len(pos) > 2 and ids[pos[-1]] > threshold:  # the last utterance is cut off: start there
                    start, pos = ids[pos[-2]], pos[:-2]
                else:
                    start = ids[pos[-1]]
            else:  # the last utterance has only its start
                start, pos = ids[pos[-1]], pos[:-1]
            for i in range(0, len(pos), 2):
                t0 = round((ids[pos[i]] - first) * resolution + offset / SR, 2)
                t1 = round((ids[pos[i + 1]] - first) * resolution + offset / SR, 2)
                text = self.pieces.decode_pieces([cfg.token_list[t] for t in ids[pos[i] + 1:pos[i + 1]]])
                utterances.append((t0, t1, text))
            step = round((start - first) * resolution * SR)
            if step <= 0:
                raise LongFormError("the window would not advance")  # ESPnet's loop would never end
            offset += step
        return "\n".join(f"[{format_timestamp(t0)} --> {format_timestamp(t1)}] {text}" for t0, t1, text in utterances)


IGNORED_DECODER = {"dropout_rate", "positional_dropout_rate", "self_attention_dropout_rate",
                   "src_attention_dropout_rate", "layer_drop_rate", "use_flash_attn"}
FIXED_DECODER = {"input_layer": "embed", "use_output_layer": True, "normalize_before": True, "concat_after": False,
                 "qk_norm": False}
ENCODER_DEFAULTS = {"attention_layer_type": "rel_selfattn", "pos_enc_layer_type": "rel_pos", "input_layer": "conv2d",
                    "positionwise_layer_type": "linear", "qk_norm": False, "interctc_layer_idx": [],
                    "interctc_use_conditioning": False}
"""ESPnet's ``EBranchformerEncoder`` defaults of the settings the rebuild fixes (a config that leaves one out gets
ESPnet's default, which must then be what is implemented)."""
FIXED_ENCODER = {"attention_layer_type": "selfattn", "pos_enc_layer_type": "abs_pos", "input_layer": "conv2d",
                 "positionwise_layer_type": "linear", "qk_norm": False, "interctc_layer_idx": [],
                 "interctc_use_conditioning": False}
SUPPORTED = {"frontend": "default", "normalize": ("global_mvn", "utterance_mvn", None), "encoder": "e_branchformer",
             "decoder": "transformer", "model": "espnet"}
CLASS_DEFAULTS = {"frontend": "default", "normalize": "utterance_mvn", "model": "espnet", "decoder": None}
"""ESPnet's ``s2t`` task defaults for a class choice the config leaves out."""


def config_from_espnet(cfg: dict[str, Any], source: Path) -> OwsmS2TConfig:
    """The inference graph's hyperparameters from an ESPnet ``s2t`` ``config.yaml``; ValueError naming ``source``
    and the setting for a model of another kind."""
    for key, want in SUPPORTED.items():
        got = cfg[key] if key in cfg else CLASS_DEFAULTS.get(key)
        if got not in (want if isinstance(want, tuple) else (want,)):
            raise ValueError(f"{source}: {key} is {got!r}; only ESPnet's OWSM v3.1 ({HF_MODEL}'s "
                             f"{', '.join(f'{k}: {v}' for k, v in SUPPORTED.items())}) can be loaded")
    enc_section = cfg.get("encoder_conf") or {}
    for key, want in FIXED_ENCODER.items():
        got = enc_section.get(key, ENCODER_DEFAULTS[key])
        if got != want and not (want == [] and got is None):
            raise ValueError(f"{source}: encoder_conf.{key} is {got!r}; the {MODEL} rebuild implements only {want!r}")
    front = frontend_settings(cfg, source, MODEL)
    enc, _ = encoder_settings(cfg, source, MODEL, set(FIXED_ENCODER))
    dec = espnet_files.conf(cfg, "decoder", {"attention_heads", "linear_units", "num_blocks", *IGNORED_DECODER,
                                             *FIXED_DECODER}, source, MODEL)
    for key, want in FIXED_DECODER.items():
        if dec.get(key, want) != want:
            raise ValueError(f"{source}: decoder_conf.{key} is {dec[key]!r}; the {MODEL} rebuild implements only "
                             f"{want!r}")
    pre = cfg.get("preprocessor_conf") or {}
    model = cfg.get("model_conf") or {}
    blocks = enc["num_blocks"]
    encoder = OwsmCtcConfig(token_list=tokens_of(cfg, source), **front, **enc, interctc_layers=(),
                            interctc_conditioning=False, cross_attention=(False,) * blocks,
                            sym_blank=str(model.get("sym_blank", "<blank>")), sym_na=str(model.get("sym_na", "<na>")))
    return OwsmS2TConfig(
        encoder=encoder, decoder_heads=int(dec.get("attention_heads", 4)),
        decoder_units=int(dec.get("linear_units", 2048)), decoder_blocks=int(dec.get("num_blocks", 6)),
        speech_seconds=float(pre.get("speech_length", 30)), sym_sos=str(model.get("sym_sos", "<sos>")),
        sym_eos=str(model.get("sym_eos", "<eos>")), sym_sop=str(model.get("sym_sop", "<sop>")),
        sym_notime=str(pre.get("notime_symbol", "<notimestamps>")),
        first_time=str(pre.get("first_time_symbol", "<0.00>")), last_time=str(pre.get("last_time_symbol", "<30.00>")),
        speech_resolution=float(pre.get("speech_resolution", 0.02)))


def bpe_model(cfg: dict[str, Any], cfg_path: Path, download: Path) -> Path:
    """The sentencepiece model the config names (``bpemodel``, relative to the download or the config)."""
    name = cfg.get("bpemodel")
    if cfg.get("token_type") != "bpe" or not name:
        raise ValueError(f"{cfg_path}: token_type is {cfg.get('token_type')!r} and bpemodel {name!r}; the {MODEL} "
                         "rebuild joins tokens with the sentencepiece model of a token_type: bpe config")
    root = download if download.is_dir() else download.parent
    for base in (Path(), root, *cfg_path.parents):
        path = Path(name) if Path(name).is_absolute() else base / name
        if path.is_file():
            return path
    raise ValueError(f"{cfg_path}: bpemodel {name!r} not found relative to {root} or the config")


def load_owsm_s2t(path: str | Path, device: str = "cpu") -> Recognizer:
    """The OWSM v3.1 of an ESPnet download (``huggingface-cli download espnet/owsm_v3.1_ebf --local-dir DIR``; see
    :func:`.espnet_files.locate`) in eval mode on ``device``, with its sentencepiece model."""
    try:
        import sentencepiece
    except ImportError as exc:
        raise ValueError("package sentencepiece not installed (pip install sentencepiece), needed to join OWSM "
                         "v3.1's tokens into text") from exc
    path = Path(path)
    cfg_path, model_path = espnet_files.locate(path, MODEL)
    cfg = espnet_files.read_config(cfg_path)
    model = OwsmS2T(config_from_espnet(cfg, cfg_path))
    espnet_files.load_state(model, model_path, cfg_path, MODEL)
    pieces = sentencepiece.SentencePieceProcessor(model_file=str(bpe_model(cfg, cfg_path, path)))
    return Recognizer(model.eval().to(device), pieces, cfg_path, model_path)


EXP_DIR = "exp/s2t_train_owsm_v3.1"
"""Where the test download keeps its training config and checkpoint, relative to the download."""
BPE_MODEL = "data/token_list/bpe_unigram/bpe.model"
"""Where the test download keeps its sentencepiece model, relative to the download (ESPnet's recipe layout)."""


def small_config(time_step: float | None = None) -> OwsmS2TConfig:
    """A small OWSM v3.1 of every feature the official one has (macaron feed-forwards, timestamp and language
    token ranges, ``<sop>``), for tests and the ESPnet check. Its three timestamp tokens cannot decode long-form
    (no ``<29.00>``); ``time_step`` (seconds) gives it a timestamp every ``time_step`` from ``<0.00>`` to
    ``<30.00>`` at that resolution instead, as the official model has every 0.02 s."""
    times: tuple[str, ...] = ("<0.00>", "<0.02>", "<30.00>")
    if time_step is not None:
        times = tuple(f"<{k * time_step:.2f}>" for k in range(round(30 / time_step) + 1))
    tokens = ("<blank>", "<unk>", "<na>", "<abk>", "<deu>", "<eng>", "<fra>", "<zho>", "<zul>", "<asr>", "<st_eng>",
              "<notimestamps>", *times, "▁a", "▁b", "c", "d", "▁hello", "lo", "▁the", "s", "<sos>", "<eos>", "<sop>")
    enc = OwsmCtcConfig(token_list=tokens, n_mels=32, size=32, heads=4, cgmlp_units=64, cgmlp_kernel=7,
                        num_blocks=2, linear_units=48, merge_kernel=5, interctc_layers=(),
                        interctc_conditioning=False, cross_attention=(False, False))
    return OwsmS2TConfig(encoder=enc, decoder_heads=4, decoder_units=40, decoder_blocks=2,
                         speech_resolution=0.02 if time_step is None else time_step)


def sentencepiece_model(tokens: tuple[str, ...]) -> bytes:
    """A sentencepiece model (serialised ``ModelProto``) whose pieces are the tokens that are not ``<...>``
    symbols, for a test download: decoding joins pieces as the real model does."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    proto = pb.ModelProto()
    proto.trainer_spec.model_type = pb.TrainerSpec.UNIGRAM
    proto.trainer_spec.vocab_size = 0
    proto.normalizer_spec.name = "identity"
    proto.normalizer_spec.add_dummy_prefix = True
    proto.normalizer_spec.remove_extra_whitespaces = True
    kinds = pb.ModelProto.SentencePiece
    pieces = [("<unk>", kinds.UNKNOWN), ("<s>", kinds.CONTROL), ("</s>", kinds.CONTROL)]
    pieces += [(t, kinds.NORMAL) for t in tokens if not (t[0] == "<" and t[-1] == ">")]
    for i, (text, kind) in enumerate(pieces):
        proto.pieces.add(piece=text, score=-float(i), type=kind)
    proto.trainer_spec.vocab_size = len(pieces)
    return proto.SerializeToString()


def espnet_config(cfg: OwsmS2TConfig) -> dict[str, Any]:
    """The ESPnet ``s2t`` training config of ``cfg`` (what a download's ``config.yaml`` holds for it)."""
    enc = cfg.encoder
    return {
        "token_list": list(cfg.token_list), "input_size": None, "init": None, "token_type": "bpe",
        "bpemodel": BPE_MODEL,
        "preprocessor": "s2t", "preprocessor_conf": {
            "text_prev_name": "text_prev", "text_ctc_name": "text_ctc", "fs": SR, "na_symbol": enc.sym_na,
            "speech_length": cfg.speech_seconds, "speech_resolution": cfg.speech_resolution, "speech_init_silence": 30,
            "text_prev_apply_prob": 0.5, "time_apply_prob": 0.5, "notime_symbol": cfg.sym_notime,
            "first_time_symbol": cfg.first_time, "last_time_symbol": cfg.last_time},
        "frontend": "default", "frontend_conf": {"n_fft": enc.n_fft, "win_length": enc.win_length,
                                                 "hop_length": enc.hop_length, "n_mels": enc.n_mels, "fs": SR},
        "specaug": None, "specaug_conf": {},
        "normalize": enc.normalize,
        "normalize_conf": ({"stats_file": f"{EXP_DIR}/feats_stats.npz", "norm_means": enc.norm_means,
                            "norm_vars": enc.norm_vars} if enc.normalize == "global_mvn"
                           else {"norm_means": enc.norm_means, "norm_vars": enc.norm_vars, "eps": enc.mvn_eps}
                           if enc.normalize == "utterance_mvn" else {}),
        "model": "espnet", "model_conf": {"ctc_weight": 0.3, "lsm_weight": 0.1, "length_normalized_loss": False,
                                          "sym_na": enc.sym_na},
        "encoder": "e_branchformer", "encoder_conf": {
            "output_size": enc.size, "attention_heads": enc.heads, "attention_layer_type": "selfattn",
            "pos_enc_layer_type": "abs_pos", "rel_pos_type": "latest", "qk_norm": False, "use_flash_attn": False,
            "cgmlp_linear_units": enc.cgmlp_units, "cgmlp_conv_kernel": enc.cgmlp_kernel,
            "use_linear_after_conv": enc.linear_after_conv, "gate_activation": enc.gate_activation,
            "num_blocks": enc.num_blocks, "dropout_rate": 0.1, "positional_dropout_rate": 0.1,
            "attention_dropout_rate": 0.1, "input_layer": "conv2d", "layer_drop_rate": 0.0,
            "linear_units": enc.linear_units, "positionwise_layer_type": "linear", "use_ffn": enc.use_ffn,
            "macaron_ffn": enc.macaron_ffn, "merge_conv_kernel": enc.merge_kernel},
        "decoder": "transformer", "decoder_conf": {
            "attention_heads": cfg.decoder_heads, "linear_units": cfg.decoder_units, "num_blocks": cfg.decoder_blocks,
            "dropout_rate": 0.1, "positional_dropout_rate": 0.1, "self_attention_dropout_rate": 0.1,
            "src_attention_dropout_rate": 0.1, "use_flash_attn": False},
        "ctc_conf": {"dropout_rate": 0.0, "ctc_type": "builtin", "reduce": True, "ignore_nan_grad": None,
                     "zero_infinity": True},
    }


EOS_BIAS = 1.0
"""Taken off the test download's ``<eos>`` logit, so that its random decoder writes text before it ends."""


def write_espnet_download(folder: Path, cfg: OwsmS2TConfig, seed: int, librosa_mel: bool = True) -> Path:
    """An OWSM v3.1 with seeded random weights in ESPnet's download layout (``meta.yaml`` naming the recipe's
    ``config.yaml`` and model file, the statistics file and the sentencepiece model the config names): a file of
    the real format for tests and ``benchmarks/check_owsm_s2t.py``. Weights are drawn as
    :func:`.owsm_ctc.write_espnet_download` draws them, ``<eos>``'s output bias lowered by :data:`EOS_BIAS`."""
    from curator.evaluation.metrics.owsm_ctc import random_state

    state = random_state(OwsmS2T(cfg).state_dict(), cfg.encoder, seed, librosa_mel)
    state["decoder.output_layer.bias"][cfg.token_list.index(cfg.sym_eos)] -= EOS_BIAS
    exp = folder / EXP_DIR
    exp.mkdir(parents=True, exist_ok=True)
    torch.save(state, exp / "valid.acc.ave_5best.till45epoch.pth")
    if cfg.encoder.normalize == "global_mvn":
        count = 1000.0
        mean, std = state["normalize.mean"].double().numpy(), state["normalize.std"].double().numpy()
        np.savez(exp / "feats_stats.npz", count=np.array(count), sum=mean * count,
                 sum_square=(std ** 2 + mean ** 2) * count)
    (exp / "config.yaml").write_text(yaml.safe_dump(espnet_config(cfg), sort_keys=False, allow_unicode=True),
                                     encoding="utf-8")
    bpe = folder / BPE_MODEL
    bpe.parent.mkdir(parents=True, exist_ok=True)
    bpe.write_bytes(sentencepiece_model(cfg.token_list))
    (folder / "meta.yaml").write_text(yaml.safe_dump({
        "files": {"s2t_model_file": f"{EXP_DIR}/valid.acc.ave_5best.till45epoch.pth"},
        "yaml_files": {"s2t_train_config": f"{EXP_DIR}/config.yaml"}}), encoding="utf-8")
    return folder
