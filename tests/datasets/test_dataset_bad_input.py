"""Bad audio is a counted rejection with a reason; bad lists are a clear error naming file and line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ds_helpers import speech_like, write_wav

from curator.datasets.kaldi import META_COLUMNS, ListError, read_kv, read_meta_tsv, read_source_list
from curator.datasets.official import CheckConfig, import_split

SR = 16000


def _layout(root: Path, entries: dict[str, tuple[str, str, int, int]], meta_free: set[str] = frozenset()) -> Path:
    """entries: uid -> (noisy rel path, clean rel path, listed fs, listed length)."""
    lists = root / "lists"
    lists.mkdir(parents=True, exist_ok=True)
    (lists / "wav.scp").write_text("".join(f"{u} {e[0]}\n" for u, e in entries.items()))
    (lists / "spk1.scp").write_text("".join(f"{u} {e[1]}\n" for u, e in entries.items()))
    (lists / "utt2fs").write_text("".join(f"{u} {e[2]}\n" for u, e in entries.items()))
    (lists / "speech_length.scp").write_text("".join(f"{u} {e[3]}\n" for u, e in entries.items()))
    meta = ["\t".join(META_COLUMNS)] + ["\t".join([u, e[0], "none" if u in meta_free else f"s_{u}", "spk", e[1], "n1",
                                                  "5.0", "none", "none", str(e[2]), str(e[3]), "t"])
                                       for u, e in entries.items()]
    (root / "meta.tsv").write_text("\n".join(meta) + "\n")
    return lists


def test_each_kind_of_bad_audio_is_rejected_with_its_reason(tmp_path):
    root = tmp_path
    good = speech_like(SR, 1.0)
    n = len(good)
    write_wav(root / "ok_n.wav", good, SR)
    write_wav(root / "ok_c.wav", good, SR)
    (root / "corrupt.wav").write_bytes(b"RIFF....WAVEfmt garbage" + bytes(range(200)))
    write_wav(root / "empty.wav", np.zeros(0, np.float32), SR)
    write_wav(root / "silent.wav", np.zeros(n, np.float32), SR)
    nan = good.copy()
    nan[100:200] = np.nan
    write_wav(root / "nan.wav", nan, SR, subtype="FLOAT")
    write_wav(root / "short.wav", good[: n // 2], SR)
    write_wav(root / "rate8k.wav", good, 8000)
    entries = {
        "a_ok": ("ok_n.wav", "ok_c.wav", SR, n),
        "b_corrupt": ("corrupt.wav", "ok_c.wav", SR, n),
        "c_empty": ("empty.wav", "ok_c.wav", SR, n),
        "d_silent": ("silent.wav", "ok_c.wav", SR, n),
        "e_nan": ("nan.wav", "ok_c.wav", SR, n),
        "f_missing": ("nope.wav", "ok_c.wav", SR, n),
        "g_len": ("ok_n.wav", "ok_c.wav", SR, n + 5),
        "h_sr": ("rate8k.wav", "ok_c.wav", SR, n),
        "i_clean_short": ("ok_n.wav", "short.wav", SR, n),
        "j_clean_missing": ("ok_n.wav", "gone.wav", SR, n),
        "k_clean_silent": ("ok_n.wav", "silent.wav", SR, n),
        "l_speech_free": ("ok_n.wav", "silent.wav", SR, n),
        "m_clean_nan": ("ok_n.wav", "nan.wav", SR, n),
    }
    lists = _layout(root, entries, meta_free={"l_speech_free"})
    res = import_split("train", lists, root / "meta.tsv", root, "t", CheckConfig("decode", 1e-4, 2))
    reasons = {r.utt_id: r.reason for r in res.rejected}
    assert reasons == {"b_corrupt": "undecodable", "c_empty": "empty", "d_silent": "silent", "e_nan": "nonfinite",
                       "f_missing": "missing", "g_len": "length_mismatch", "h_sr": "sr_mismatch",
                       "i_clean_short": "clean_length_mismatch", "j_clean_missing": "clean_missing",
                       "k_clean_silent": "clean_silent", "m_clean_nan": "clean_nonfinite"}
    assert [r.utt_id for r in res.rows] == ["a_ok", "l_speech_free"]
    assert res.rows[1].distortion == "speech_free"
    assert next(r for r in res.rejected if r.utt_id == "j_clean_missing").path.endswith("gone.wav")


def test_header_mode_catches_undecodable_and_empty_but_not_nan(tmp_path):
    good = speech_like(SR, 0.5)
    write_wav(tmp_path / "ok.wav", good, SR)
    (tmp_path / "corrupt.wav").write_bytes(b"not audio at all")
    nan = good.copy()
    nan[:10] = np.nan
    write_wav(tmp_path / "nan.wav", nan, SR, subtype="FLOAT")
    lists = _layout(tmp_path, {"a": ("corrupt.wav", "ok.wav", SR, len(good)), "b": ("nan.wav", "ok.wav", SR, len(good))})
    res = import_split("dev", lists, None, tmp_path, "t", CheckConfig("header", 1e-4, 1))
    assert {r.utt_id: r.reason for r in res.rejected} == {"a": "undecodable"}


@pytest.mark.parametrize(("content", "match"), [
    ("u1 a.wav\nu2\n", r"wav.scp:2: expected 2 columns"),
    ("u1 a.wav\nu1 b.wav\n", r"wav.scp:2: duplicate id 'u1' \(first on line 1\)"),
])
def test_malformed_lists_name_file_and_line(tmp_path, content, match):
    (tmp_path / "wav.scp").write_text(content)
    with pytest.raises(ListError, match=match):
        read_kv(tmp_path / "wav.scp")


def test_source_list_needs_three_columns_and_a_numeric_rate(tmp_path):
    (tmp_path / "speech.scp").write_text("s1 16000 a.wav\ns2 a.wav\n")
    with pytest.raises(ListError, match=r"speech.scp:2: expected 3 columns"):
        read_source_list(tmp_path / "speech.scp")
    (tmp_path / "speech.scp").write_text("s1 16k a.wav\n")
    with pytest.raises(ListError, match=r"'s1'.*16k"):
        read_source_list(tmp_path / "speech.scp")


def test_meta_tsv_missing_columns_short_rows_and_duplicates(tmp_path):
    p = tmp_path / "meta.tsv"
    p.write_text("id\tnoisy_path\n")
    with pytest.raises(ListError, match=r"meta.tsv:1: header lacks column\(s\) speech_uid"):
        read_meta_tsv(p)
    row = "\t".join(["x"] * len(META_COLUMNS))
    p.write_text("\t".join(META_COLUMNS) + "\n" + row + "\nshort\trow\n")
    with pytest.raises(ListError, match=r"meta.tsv:3: 2 tab-separated fields"):
        read_meta_tsv(p)
    p.write_text("\t".join(META_COLUMNS) + "\n" + row + "\n" + row + "\n")
    with pytest.raises(ListError, match=r"meta.tsv:3: duplicate id 'x'"):
        read_meta_tsv(p)


def test_missing_wav_scp_and_bad_numbers_are_clear_errors(tmp_path):
    with pytest.raises(ListError, match=r"wav.scp' does not exist"):
        import_split("train", tmp_path, None, tmp_path, "t", CheckConfig("lists", 1e-4, 1))
    write_wav(tmp_path / "a.wav", speech_like(SR, 0.3), SR)
    (tmp_path / "wav.scp").write_text("u1 a.wav\n")
    (tmp_path / "utt2fs").write_text("u1 sixteen\n")
    with pytest.raises(ListError, match=r"utt2fs: entry 'u1' has 'sixteen'"):
        import_split("train", tmp_path, None, tmp_path, "t", CheckConfig("decode", 1e-4, 1))


@pytest.mark.parametrize("mode", ["lists", "header", "decode"])
def test_rate_and_channel_policies_apply_to_official_layouts_in_every_check_mode(tmp_path, mode):
    from curator.datasets.checks import InputPolicy

    good = speech_like(SR, 0.5)
    write_wav(tmp_path / "ok.wav", good, SR)
    write_wav(tmp_path / "r96.wav", speech_like(96000, 0.5), 96000)
    write_wav(tmp_path / "r11.wav", speech_like(11025, 0.5), 11025)
    write_wav(tmp_path / "st.wav", np.stack([good, good[::-1]], axis=1), SR)
    lists = _layout(tmp_path, {"a": ("ok.wav", "ok.wav", SR, len(good)), "b": ("r96.wav", "r96.wav", 96000, 48000),
                               "c": ("r11.wav", "r11.wav", 11025, 5512), "d": ("st.wav", "ok.wav", SR, len(good))})
    res = import_split("train", lists, tmp_path / "meta.tsv", tmp_path, "t", CheckConfig(mode, 1e-4, 1))
    strict = InputPolicy([8000, 16000, 48000], "reject", "reject", 2)
    rejected: list = []
    kept = list(strict.apply(list(res.rows), rejected))
    assert [r.utt_id for r in kept] == ["a"]
    assert {(r.utt_id, r.reason) for r in rejected} == {("b", "unsupported_rate"), ("c", "unsupported_rate"),
                                                        ("d", "multichannel")}
    res = import_split("train", lists, tmp_path / "meta.tsv", tmp_path, "t", CheckConfig(mode, 1e-4, 1))
    lenient = InputPolicy([8000, 16000, 48000], "resample", "first", 2)
    rejected = []
    rows = {r.utt_id: r for r in lenient.apply(list(res.rows), rejected)}
    assert not rejected and (rows["b"].sr, rows["b"].custom) == (48000, {"source_sr": 96000})
    assert (rows["c"].sr, rows["c"].custom) == (16000, {"source_sr": 11025})
    assert rows["d"].custom == {"channels": 2, "channel_policy": "first"} and rows["a"].custom == {}
    assert lenient.summary(1) == {
        "sample_rates": [8000, 16000, 48000], "rate_policy": "resample", "resampled": 2,
        "resampled_by_rate": {"11025->16000": 1, "96000->48000": 1}, "resampled_examples": ["b"],
        "channel_policy": "first", "multichannel": 1, "multichannel_by_channels": {"2": 1},
        "multichannel_examples": ["d"]}
