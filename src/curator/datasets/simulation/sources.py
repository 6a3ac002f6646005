"""The inputs of a simulation: official ``uid fs path`` source lists plus speaker, text and language lists."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from curator.audio import AudioError, audio_info
from curator.datasets.kaldi import ListError, SourceEntry, read_kv, read_source_lists
from curator.datasets.labels import normalize_language


@dataclass
class Sources:
    """Source pools of one simulation. Paths are as listed; relative ones resolve against ``root``."""

    root: Path
    speech: dict[str, SourceEntry]
    noise: dict[str, SourceEntry]
    wind: dict[str, SourceEntry]
    rir: dict[str, SourceEntry]
    utt2spk: dict[str, str] = field(default_factory=dict)
    text: dict[str, str] = field(default_factory=dict)
    utt2lang: dict[str, str] = field(default_factory=dict)
    lengths: dict[str, int] = field(default_factory=dict)

    def resolve(self, path: str) -> Path:
        """A listed path, relative ones against ``root``."""
        p = Path(path)
        return p if p.is_absolute() else self.root / p

    @classmethod
    def from_lists(cls, root: str | os.PathLike[str], speech: Sequence[str], noise: Sequence[str],
                   wind: Sequence[str], rir: Sequence[str], utt2spk: Sequence[str] = (),
                   text: Sequence[str] = (), utt2lang: Sequence[str] = ()) -> Sources:
        """Read the lists (paths relative to ``root``) and every speech file's length from its header."""
        root = Path(root)

        def rel(paths: Sequence[str]) -> list[Path]:
            return [Path(p) if Path(p).is_absolute() else root / p for p in paths]

        def kv(paths: Sequence[str]) -> dict[str, str]:
            out: dict[str, str] = {}
            for p in rel(paths):
                out.update(read_kv(p))
            return out

        if not speech or not noise:
            raise ListError("a simulation needs at least one speech list and one noise list "
                            "(dataset.urgent2026.sources.speech / .noise)")
        src = cls(root=root, speech=read_source_lists(rel(speech)), noise=read_source_lists(rel(noise)),
                  wind=read_source_lists(rel(wind)), rir=read_source_lists(rel(rir)), utt2spk=kv(utt2spk),
                  text=kv(text), utt2lang={k: normalize_language(v) for k, v in kv(utt2lang).items()})
        src.lengths = src.read_lengths()
        return src

    def read_lengths(self) -> dict[str, int]:
        """Speech length in samples at the listed rate (header only); a missing file names its list entry."""
        out = {}
        for uid, entry in sorted(self.speech.items()):
            try:
                sr, frames, _ = audio_info(self.resolve(entry.path))
            except AudioError as exc:
                raise ListError(f"speech source '{uid}': {exc}") from exc
            out[uid] = int(round(frames * entry.fs / sr))
        return out

    def check_pools(self) -> None:
        """Every pool that the simulation draws from must exist."""
        for name in ("speech", "noise"):
            if not getattr(self, name):
                raise ListError(f"the {name} source list is empty")
