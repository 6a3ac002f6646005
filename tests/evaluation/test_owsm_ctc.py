"""LID accuracy with the official OWSM-CTC v4 (rebuilt from ESPnet's download, ESPnet not installed): ESPnet's
encoder output and greedy tokens from a model file of the real format, the refusals of other models, and the
metric against the row's language."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from curator.evaluation.metrics import METRICS, MetricOptions, check_available, compute_metrics
from curator.evaluation.metrics.owsm_ctc import (
    EXP_DIR,
    language,
    load_owsm_ctc,
    min_samples,
    probe_signal,
    small_config,
    write_espnet_download,
)

SR = 16000
MODEL_FILE = f"{EXP_DIR}/valid.total_count.ave_5best.pth"
ESPNET_LAST_FRAME = [1.150175, 0.047692, -0.304524, 0.151172, 0.009642, -0.57288, -1.753072, -0.617913]
"""The first 8 values of the last frame of ESPnet 202412's encoder output (``ESPnetS2TCTCModel.encode``, as
``Speech2TextGreedySearch`` calls it) for ``probe_signal(1.3, 0)`` with the small download of seed 0
(``python benchmarks/check_owsm_ctc.py --espnet-site ...``: models.small["1.3s"]; ours was equal to the bit)."""
ESPNET_TOKENS = ["d", "<unk>", "<notimestamps>", "<unk>"]
"""ESPnet's greedy tokens of the same call."""


@pytest.fixture
def download(tmp_path: Path) -> Path:
    return write_espnet_download(tmp_path / "owsm_ctc_v4_1B", small_config(), seed=0)


def test_owsm_ctc_gives_espnets_encoder_output_and_tokens_from_each_layout(download: Path) -> None:
    x = torch.from_numpy(probe_signal(1.3, 0))[None]
    with torch.inference_mode():
        model = load_owsm_ctc(download)
        enc = model.encode(x)
        assert enc.shape == (1, 2 + 15, 32)  # the two prefix tokens, then 131 STFT frames subsampled to 15
        np.testing.assert_allclose(enc[0, -1, :8].numpy(), ESPNET_LAST_FRAME, atol=2e-5)
        assert model.greedy(x) == ESPNET_TOKENS
        (download / "meta.yaml").unlink()  # a folder with only the recipe's files, then the model file itself
        for path in (download, download / MODEL_FILE):
            assert torch.equal(load_owsm_ctc(path).encode(x), enc), path
    assert language(model, x[0].numpy()) == "d"  # the first token, as the official script reads it
    short = np.zeros(min_samples(model.cfg) - 1, np.float32)
    assert language(model, short) is None  # ESPnet refuses fewer than 15 frames (TooShortUttError)


def _rewrite(download: Path, **changes: object) -> None:
    config = download / EXP_DIR / "config.yaml"
    cfg = yaml.safe_load(config.read_text(encoding="utf-8"))
    for key, value in changes.items():
        section, _, name = key.partition("__")
        if name:
            cfg[section] = {**cfg[section], name: value}
        else:
            cfg[section] = value
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")


@pytest.mark.parametrize(("changes", "message"), [
    ({"encoder": "conformer"}, r"encoder is 'conformer'; only ESPnet's OWSM-CTC"),
    ({"encoder_conf__pos_enc_layer_type": "rel_pos"}, r"encoder_conf\.pos_enc_layer_type is 'rel_pos'"),
    ({"encoder_conf__input_layer": "conv2d"}, r"encoder_conf\.input_layer is 'conv2d'"),
    ({"encoder_conf__stochastic_depth": 0.1}, r"encoder_conf has settings .* \['stochastic_depth'\]"),
    ({"frontend_conf__fs": 8000}, r"frontend_conf\.fs is 8000"),
    ({"promptencoder_conf__concat_after": True}, r"promptencoder_conf\.concat_after is True"),
    ({"token_list": ["<blank>", "<na>", "<asr>"]}, r"no <nolang>"),
])
def test_owsm_ctc_names_the_file_of_another_model(download: Path, changes: dict, message: str) -> None:
    _rewrite(download, **changes)
    with pytest.raises(ValueError, match=message):
        load_owsm_ctc(download)


def test_owsm_ctc_names_a_missing_weight_and_ignores_training_settings(download: Path) -> None:
    _rewrite(download, encoder_conf__dropout_rate=0.3, encoder_conf__use_flash_attn=True)
    load_owsm_ctc(download)  # dropouts and flash attention do not change inference
    state = torch.load(download / MODEL_FILE, weights_only=True)
    state.pop("encoder.encoders.1.cross_attn.linear_q.weight")
    torch.save(state, download / MODEL_FILE)
    with pytest.raises(ValueError, match=r"\.pth: does not match .*cross_attn\.linear_q\.weight"):
        load_owsm_ctc(download)


def test_language_accuracy_runs_the_configured_owsm_ctc(download: Path, tmp_path: Path) -> None:
    """eval.weights.lid_acc naming an ESPnet download runs OWSM-CTC (no stand-in): 1 where its first token is the
    row's language, 0 where it is another, NaN for a row without a language; reference_audio compares with the
    language identified on the reference."""
    state = torch.load(download / MODEL_FILE, weights_only=True)
    deu = small_config().token_list.index("<deu>")
    state["ctc.ctc_lo.bias"][deu] = 100.0  # every frame says German: a trained model's confident answer
    torch.save(state, download / MODEL_FILE)
    options = MetricOptions(weights={"lid_acc": str(download)})
    lid = METRICS.get("lid_acc")
    assert check_available(lid, options) is None and lid.substitute(options) is None
    signals = [probe_signal(1.0, i) for i in range(4)]
    rows = [{"language": "de"}, {"language": "deu"}, {"language": "en"}, {"language": "unknown"}]

    def run(opts: MetricOptions, labels: list[dict] | None) -> np.ndarray:
        return compute_metrics([lid], signals, signals, np.full(4, SR), None, opts, labels)["lid_acc"]

    scores = run(options, rows)
    np.testing.assert_array_equal(scores[:3], [1.0, 1.0, 0.0])
    assert np.isnan(scores[3])
    both = MetricOptions(weights=options.weights, lid_reference="reference_audio")
    np.testing.assert_array_equal(run(both, None), np.ones(4))
    bad = tmp_path / "not_owsm"
    bad.mkdir()
    (bad / "meta.yaml").write_text("files: {}\n")
    reason = check_available(lid, MetricOptions(weights={"lid_acc": str(bad)}))
    assert reason is not None and str(bad) in reason and "owsm_ctc_v4_1B" in reason, reason


def test_owsm_ctc_with_utterance_mvn_ignores_the_input_gain(tmp_path: Path) -> None:
    """``normalize: utterance_mvn`` (ESPnet's task default) removes each utterance's own log-mel mean: a gain on
    the waveform, a constant added to every log-mel value, leaves the encoder output as it was (float rounding);
    the stored global statistics would not."""
    import dataclasses

    x = torch.from_numpy(probe_signal(1.3, 2))[None]
    outputs = {}
    for normalize in ("utterance_mvn", "global_mvn"):
        folder = write_espnet_download(tmp_path / normalize, dataclasses.replace(small_config(), normalize=normalize),
                                       seed=0)
        model = load_owsm_ctc(folder)
        assert type(model.normalize).__name__ == {"utterance_mvn": "UtteranceMVN", "global_mvn": "GlobalMVN"}[normalize]
        with torch.inference_mode():
            outputs[normalize] = (model.encode(x), model.encode(4.0 * x))
    quiet, loud = outputs["utterance_mvn"]
    torch.testing.assert_close(loud, quiet, rtol=0, atol=1e-4)
    quiet, loud = outputs["global_mvn"]
    assert (loud - quiet).abs().max() > 1e-2
