"""The score stage carries per-augmentation flags from the manifest and rejects filter values no row has."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curator.contract.manifest import write_manifest
from curator.io import read_json
from curator.scoring.cli import main

from .conftest import LIGHT, make_pairs

PARAMS = str(Path(__file__).resolve().parents[1] / "params.yaml")
CLIP = "clipping(min=0.03,max=0.99)"
WIND = "wind_noise(threshold=0.29,ratio=8.5,clipping=False)"
OFFICIAL = [  # (distortion, augmentations, noise_id, rir_id) as the official simulation's import writes them
    ("clipping", [CLIP, "packet_loss(packet_loss_indices=[3],packet_duration_ms=20)"], "noise_1", "rir_1"),
    ("reverb", [], "noise_2", "rir_2"),
    ("noise", ["bandwidth_limitation-none->16000"], "noise_3", None),
    ("wind", [WIND], "wind_noise_4", "rir_3"),
    ("codec", ["codec(format=mp3,encoder=None,qscale=3)"], "noise_5", None),
    ("reverb", [], "noise_6", "rir_4"),
]
EXPECTED = [["clipping", "noise", "packet_loss", "reverb"], ["noise", "reverb"], ["noise"], ["reverb", "wind"],
            ["codec", "noise"], ["noise", "reverb"]]


@pytest.fixture(scope="module")
def official(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("flags")
    rows = make_pairs(root, len(OFFICIAL))
    for row, (label, augs, noise, rir) in zip(rows, OFFICIAL, strict=True):
        row.update(distortion=label, augmentations=augs, noise_id=noise, rir_id=rir)
    write_manifest(root / "train.jsonl", rows)
    return root / "train.jsonl"


def score(manifest: Path, out: Path, *overrides: str) -> int:
    return main(["--config", PARAMS, f"data.manifest={manifest}", "--out", str(out), "--metrics",
                 str(out.with_suffix(".json")), "score.num_workers=1", *LIGHT, *overrides])


def test_flags_travel_from_the_manifest_and_filter_the_rows(official: Path, tmp_path: Path) -> None:
    assert score(official, tmp_path / "all.parquet") == 0
    table = pq.read_table(tmp_path / "all.parquet", columns=["utt_id", "distortion", "augmentations"])
    assert table["augmentations"].to_pylist() == EXPECTED
    assert score(official, tmp_path / "rev.parquet", "data.filters.augmentations=[reverb]") == 0
    kept = pq.read_table(tmp_path / "rev.parquet", columns=["utt_id", "distortion"])
    assert kept["utt_id"].to_pylist() == [u for u, f in zip(table["utt_id"].to_pylist(), EXPECTED, strict=True)
                                          if "reverb" in f]
    assert sorted(set(kept["distortion"].to_pylist())) == ["clipping", "reverb", "wind"]
    assert read_json(tmp_path / "rev.json")["rows_filtered_out"] == {"augmentations": 2}


@pytest.mark.parametrize(("override", "message"), [
    ("data.filters.languages=[eng]", "data.filters.languages lists 'eng' (did you mean 'en'?), which no row of "
     "manifest '{manifest}' has; valid choices: de, en"),
    ("data.filters.augmentations=[reverb, clip]", "data.filters.augmentations lists 'clip' (did you mean "
     "'clipping'?)"),
    ("data.filters.sample_rates=[32000]", "valid choices: 8000, 16000, 24000, 48000"),
])
def test_filter_values_no_row_has_stop_the_score_stage(official: Path, tmp_path: Path, override: str, message: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert score(official, tmp_path / "s.parquet", override) == 2
    assert message.format(manifest=official) in capsys.readouterr().err
    assert not (tmp_path / "s.parquet").exists()


def test_filter_values_no_row_has_stop_the_probe_stage(official: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from curator.scoring.probe.cli import main as probe_main

    out = tmp_path / "probe.parquet"
    assert probe_main(["--config", PARAMS, f"data.manifest={official}", "--out", str(out), "--metrics",
                       str(tmp_path / "probe.json"), "data.filters.augmentations=[echo]"]) == 2
    assert ("data.filters.augmentations lists 'echo', which no row of manifest "
            f"'{official}' has; valid choices: clipping, codec, noise, packet_loss, reverb, wind") in capsys.readouterr().err
    assert not out.exists()
