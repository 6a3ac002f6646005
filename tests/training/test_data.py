"""Curated-list join (and its errors), sampling-rate-grouped batches, crops and zero targets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from curator.training.data import (
    CuratedListError,
    PairDataset,
    SampleRateBatchSampler,
    collate_pairs,
    load_curated_rows,
    make_loader,
    read_curated_ids,
)


def test_join_keeps_curated_order_and_drops_duplicates(corpus: dict[str, Path], tmp_path: Path) -> None:
    csv = tmp_path / "c.csv"
    csv.write_text("utt_id,score\ntrain_03,1\ntrain_01,2\ntrain_03,3\n")
    rows, dups = load_curated_rows(str(corpus["train"]), str(csv))
    assert rows["utt_id"].tolist() == ["train_03", "train_01"] and dups == 1


def test_unknown_utt_id_is_named(corpus: dict[str, Path], tmp_path: Path) -> None:
    csv = tmp_path / "c.csv"
    csv.write_text("utt_id\ntrain_01\nghost_utt\n")
    with pytest.raises(CuratedListError, match=r"not in manifest .*train\.jsonl.*'ghost_utt'"):
        load_curated_rows(str(corpus["train"]), str(csv))


@pytest.mark.parametrize("text, match", [
    ("utt_id\n", "selects no utterances"),
    ("", "not a readable CSV"),
    ("id\ntrain_01\n", "no 'utt_id' column"),
    ("utt_id,x\ntrain_01,1\n,2\n", "empty utt_id on line"),
])
def test_bad_curated_lists(tmp_path: Path, text: str, match: str) -> None:
    csv = tmp_path / "c.csv"
    csv.write_text(text)
    with pytest.raises(CuratedListError, match=match):
        read_curated_ids(csv)


def test_batches_share_one_rate_cover_every_row_and_are_seeded() -> None:
    srs = np.array([8000, 16000, 8000, 48000, 16000, 8000, 16000])
    sampler = SampleRateBatchSampler(srs, batch_size=2, seed=3, shuffle=True)
    first, second = list(sampler), list(sampler)
    for epoch in (first, second):
        assert len(epoch) == len(sampler) == 5
        assert sorted(i for batch in epoch for i, _ in batch) == list(range(len(srs)))
        assert all(len({srs[i] for i, _ in batch}) == 1 for batch in epoch)
    assert first != second  # a new permutation each epoch
    assert list(SampleRateBatchSampler(srs, 2, seed=3, shuffle=True)) == first  # same seed, same run


def test_crops_have_the_requested_length_and_speech_free_rows_a_zero_target(corpus: dict[str, Path]) -> None:
    rows, _ = load_curated_rows(str(corpus["train"]), str(corpus["curated"]))
    ds = PairDataset(rows, crop_seconds=0.25)
    noisy, clean, sr = ds[(0, 0.5)]
    assert len(noisy) == len(clean) == int(0.25 * sr) and np.abs(clean).max() > 0
    speech_free = len(rows) - 1  # the fixture's last train row has no clean_path
    _, zero, _ = ds[(speech_free, 0.9)]
    assert not zero.any()
    long_noisy, _, sr = PairDataset(rows, crop_seconds=3.0)[(0, 0.0)]
    assert len(long_noisy) == 3 * sr  # shorter files are zero-padded to the crop


def test_loader_yields_single_rate_batches(corpus: dict[str, Path]) -> None:
    rows, _ = load_curated_rows(str(corpus["train"]), str(corpus["curated"]))
    batches = list(make_loader(rows, 0.25, batch_size=3, seed=0, shuffle=True, num_workers=0))
    assert sum(len(b.noisy) for b in batches) == len(rows)
    for b in batches:
        assert b.noisy.shape == b.clean.shape and b.noisy.shape[1] == int(0.25 * b.sr)
    with pytest.raises(ValueError, match="mixes sampling rates"):
        collate_pairs([(np.zeros(4, np.float32), np.zeros(4, np.float32), 8000),
                       (np.zeros(4, np.float32), np.zeros(4, np.float32), 16000)])
