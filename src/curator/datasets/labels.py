"""Distortion and language labels: the manifest's slice vocabulary and the one rule that assigns it.

The official simulation log records what was done to each utterance (``augmentation``, ``noise_uid``,
``rir_uid``); the primary ``distortion`` label is derived from it, never guessed from a path:

1. speech-free (noise-only) example -> ``speech_free``;
2. else the first extra augmentation drawn (bandwidth_limitation, clipping, codec, packet_loss);
3. else ``wind`` if the noise is wind noise;
4. else ``reverb`` if a RIR was applied;
5. else ``noise`` (additive noise is always present).
"""

from __future__ import annotations

import re

DISTORTIONS = ("noise", "reverb", "wind", "bandwidth_limitation", "clipping", "codec", "packet_loss",
               "speech_free")
"""The manifest ``distortion`` vocabulary (the slice key of selection quotas)."""

_AUG_PREFIX = (("bandwidth_limitation", "bandwidth_limitation"), ("clipping", "clipping"), ("codec", "codec"),
               ("packet_loss", "packet_loss"), ("wind_noise", "wind"))
_NOOP_BANDWIDTH = re.compile(r"bandwidth_limitation-none->\d+")
WIND_PREFIX = "wind_noise"
"""Official wind-noise ids and augmentation strings start with this."""

LANGUAGE_ALIASES = {"cmn": "zh", "zh-cn": "zh", "mandarin": "zh", "english": "en", "german": "de",
                    "spanish": "es", "french": "fr"}
NO_LANGUAGE = "none"
"""Language of speech-free examples."""
UNKNOWN_LANGUAGE = "unknown"
"""Language of speech whose lists say nothing and whose id names no language."""
LANGUAGES = ("en", "de", "es", "fr", "zh")
"""Languages of the URGENT 2026 training data (ISO 639-1; Mandarin is ``zh``)."""


def split_augmentations(field: str) -> list[str]:
    """Official ``augmentation`` column -> list of augmentation strings (``none`` / empty -> [])."""
    return [a for a in field.strip().split("/") if a and a != "none"]


def augmentation_kind(aug: str) -> str | None:
    """``clipping(min=..,max=..)`` -> ``clipping``; unknown strings -> None."""
    for prefix, kind in _AUG_PREFIX:
        if aug.startswith(prefix):
            return kind
    return None


def primary_distortion(augmentations: list[str], noise_uid: str, rir_uid: str | None, speech_free: bool) -> str:
    """The one-label rule of the module docstring."""
    if speech_free:
        return "speech_free"
    for aug in augmentations:
        kind = augmentation_kind(aug)
        if kind not in (None, "wind") and not _NOOP_BANDWIDTH.fullmatch(aug):
            return kind
    if noise_uid.startswith(WIND_PREFIX) or any(a.startswith(WIND_PREFIX) for a in augmentations):
        return "wind"
    if rir_uid:
        return "reverb"
    return "noise"


def normalize_language(code: str) -> str:
    """``zh-CN`` / ``cmn`` -> ``zh``, ``en-US`` -> ``en``: the primary ISO 639-1 subtag, lower case."""
    low = code.strip().lower().replace("_", "-")
    low = LANGUAGE_ALIASES.get(low, low)
    return LANGUAGE_ALIASES.get(low.split("-")[0], low.split("-")[0])


def infer_language(path: str, languages: tuple[str, ...]) -> str | None:
    """A ``/xx/`` or ``_xx_`` component of ``path`` naming one of ``languages``, else None."""
    low = "/" + path.lower().replace("\\", "/")
    for lang in languages:
        if f"/{lang}/" in low or f"_{lang}_" in low or f"/{lang}_" in low:
            return lang
    return None


_PATH_DISTORTION = {"speech_free": "speech_free", "bandwidth_limitation": "bandwidth_limitation",
                    "bandlimit": "bandwidth_limitation", "bandwidth": "bandwidth_limitation",
                    "packet_loss": "packet_loss", "packetloss": "packet_loss", "clipping": "clipping",
                    "clip": "clipping", "codec": "codec", "wind": "wind", "reverb": "reverb", "noise": "noise"}


def infer_distortion(path: str) -> str | None:
    """A path component naming a distortion (``/clip/``, ``_reverb_``, ``/packet_loss/`` ...), else None.

    Components are split on ``/``, ``.``, ``-`` and also matched whole, so ``packet_loss`` is one token.
    """
    low = path.lower().replace("\\", "/").replace("-", "_")
    components = [c for c in re.split(r"[/.]+", low) if c]
    tokens = components + [t for c in components for t in c.split("_")]
    for token in tokens:
        if token in _PATH_DISTORTION:
            return _PATH_DISTORTION[token]
    return None


def language_of(speech_uid: str, utt2lang: dict[str, str]) -> str:
    """Language of a speech source: its utt2lang entry, else a language token in its id (``cv_de_123``),
    else ``unknown``; speech-free rows (``speech_uid == none``) get ``none``."""
    if speech_uid == "none":
        return NO_LANGUAGE
    if speech_uid in utt2lang:
        return normalize_language(utt2lang[speech_uid])
    return infer_language(speech_uid.replace("-", "_"), LANGUAGES) or UNKNOWN_LANGUAGE
