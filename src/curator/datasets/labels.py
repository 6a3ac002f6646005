"""Distortion and language labels: the manifest's slice vocabulary and the one rule that assigns it.

The official simulation log records what was done to each utterance (``augmentation``, ``noise_uid``,
``rir_uid``); the primary ``distortion`` label is derived from it, never guessed from a path:

1. speech-free (noise-only) example -> ``speech_free``;
2. else the first extra augmentation drawn (bandwidth_limitation, clipping, codec, packet_loss);
3. else ``wind`` if the noise is wind noise;
4. else ``reverb`` if a RIR was applied;
5. else ``noise`` (additive noise is always present).

Languages are ISO 639-1 codes (``en``, ``de``, ``zh``). The official lists write ISO 639-2 codes (``eng``,
``deu``, ``spa``, ``fra``, ``zho``; some corpora ``cmn``); :func:`language_label` maps every code of
:data:`ISO639_1` (639-2/T and /B, 639-3 individual languages, English names, region subtags) to its 639-1 code,
and keeps a code it does not know as it is, saying so, so the importer can count it.
"""

from __future__ import annotations

import functools
import re

DISTORTIONS = ("noise", "reverb", "wind", "bandwidth_limitation", "clipping", "codec", "packet_loss",
               "speech_free")
"""The manifest ``distortion`` vocabulary (the slice key of selection quotas)."""

_AUG_PREFIX = (("bandwidth_limitation", "bandwidth_limitation"), ("clipping", "clipping"), ("codec", "codec"),
               ("packet_loss", "packet_loss"), ("wind_noise", "wind"))
_NOOP_BANDWIDTH = re.compile(r"bandwidth_limitation-none->\d+")
WIND_PREFIX = "wind_noise"
"""Official wind-noise ids and augmentation strings start with this."""

ISO639_1: dict[str, tuple[str, ...]] = {
    # 639-1: ISO 639-2/T, 639-2/B where it differs, 639-3 individual languages, English names (lower case)
    "en": ("eng", "english"),
    "de": ("deu", "ger", "german"),
    "es": ("spa", "spanish", "castilian"),
    "fr": ("fra", "fre", "french"),
    "zh": ("zho", "chi", "cmn", "yue", "wuu", "nan", "hak", "chinese", "mandarin", "cantonese"),
    "ja": ("jpn", "japanese"),
    "ko": ("kor", "korean"),
    "it": ("ita", "italian"),
    "pt": ("por", "portuguese"),
    "nl": ("nld", "dut", "dutch", "flemish"),
    "ru": ("rus", "russian"),
    "uk": ("ukr", "ukrainian"),
    "pl": ("pol", "polish"),
    "cs": ("ces", "cze", "czech"),
    "sk": ("slk", "slo", "slovak"),
    "sl": ("slv", "slovenian"),
    "hr": ("hrv", "croatian"),
    "sr": ("srp", "serbian"),
    "bg": ("bul", "bulgarian"),
    "ro": ("ron", "rum", "romanian"),
    "hu": ("hun", "hungarian"),
    "el": ("ell", "gre", "greek"),
    "tr": ("tur", "turkish"),
    "sv": ("swe", "swedish"),
    "da": ("dan", "danish"),
    "no": ("nor", "norwegian"),
    "nb": ("nob", "bokmal"),
    "nn": ("nno", "nynorsk"),
    "fi": ("fin", "finnish"),
    "et": ("est", "ekk", "estonian"),
    "lv": ("lav", "lvs", "latvian"),
    "lt": ("lit", "lithuanian"),
    "is": ("isl", "ice", "icelandic"),
    "ga": ("gle", "irish"),
    "cy": ("cym", "wel", "welsh"),
    "eu": ("eus", "baq", "basque"),
    "ca": ("cat", "catalan"),
    "gl": ("glg", "galician"),
    "ar": ("ara", "arb", "arabic"),
    "he": ("heb", "hebrew"),
    "fa": ("fas", "per", "pes", "persian", "farsi"),
    "hi": ("hin", "hindi"),
    "ur": ("urd", "urdu"),
    "bn": ("ben", "bengali"),
    "ta": ("tam", "tamil"),
    "te": ("tel", "telugu"),
    "th": ("tha", "thai"),
    "vi": ("vie", "vietnamese"),
    "id": ("ind", "indonesian"),
    "ms": ("msa", "may", "zsm", "malay"),
    "sw": ("swa", "swh", "swahili"),
    "ka": ("kat", "geo", "georgian"),
    "hy": ("hye", "arm", "armenian"),
    "be": ("bel", "belarusian"),
    "kk": ("kaz", "kazakh"),
}
"""ISO 639-1 code -> the other spellings the URGENT corpora and common tools use for it (one table, data only)."""
LANGUAGE_ALIASES: dict[str, str] = {alias: code for code, aliases in ISO639_1.items() for alias in aliases}
"""Every alias of :data:`ISO639_1` -> its ISO 639-1 code."""
NO_LANGUAGE = "none"
"""Language of speech-free examples."""
UNKNOWN_LANGUAGE = "unknown"
"""Language of speech whose lists say nothing and whose id names no language."""
PLACEHOLDER_LANGUAGES = {NO_LANGUAGE: NO_LANGUAGE, UNKNOWN_LANGUAGE: UNKNOWN_LANGUAGE, "zxx": NO_LANGUAGE,
                         "und": UNKNOWN_LANGUAGE}
"""Codes that name no language (ISO 639-2 ``zxx``: no linguistic content, ``und``: undetermined)."""
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


@functools.lru_cache(maxsize=4096)  # a few distinct codes, looked up once per row of million-row lists
def language_label(code: str) -> tuple[str, bool]:
    """(ISO 639-1 code, True) for a code :data:`ISO639_1` knows, else (the code as given, False).

    ``eng`` / ``en-US`` / ``English`` -> ``en``; ``cmn`` / ``zho`` / ``zh-CN`` -> ``zh``; the placeholders
    ``none`` / ``zxx`` -> ``none`` and ``unknown`` / ``und`` -> ``unknown`` (known: they name no language).
    """
    original = code.strip()
    low = original.lower().replace("_", "-")
    if low in PLACEHOLDER_LANGUAGES:
        return PLACEHOLDER_LANGUAGES[low], True
    primary = low.split("-")[0]
    for candidate in (low, primary):
        if candidate in ISO639_1:
            return candidate, True
        if candidate in LANGUAGE_ALIASES:
            return LANGUAGE_ALIASES[candidate], True
    return original, False


def normalize_language(code: str) -> str:
    """The language of :func:`language_label` (an unknown code is returned as given)."""
    return language_label(code)[0]


def infer_language(path: str, languages: tuple[str, ...]) -> str | None:
    """A ``/xx/``, ``_xx_`` or ``/xx_`` component of ``path`` naming one of ``languages`` by its ISO 639-1
    code or any alias of :data:`ISO639_1` (``/eng/``, ``_deu_``, ``mls_german_``), else None."""
    low = "/" + path.lower().replace("\\", "/")
    for lang in languages:
        for token in (lang, *ISO639_1.get(lang, ())):
            if f"/{token}/" in low or f"_{token}_" in low or f"/{token}_" in low:
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
