"""Official baseline checkpoints (Lightning files of ``SEModel`` / ``FlowSEModel``) in this project's models.

CI has neither ESPnet nor the checkout, so the checkpoints here are written in the official format by the test:
this project's seeded model under the official names (:func:`ours_to_official`, whose layout
``benchmarks/check_*`` load strictly into the official networks; with the seeded models of
``test_official_recipe.py``/``test_flowse.py`` those reproduce the pinned official outputs), the hyper-parameters
pickled as ``baseline_code.config.Config``, FlowSE's ``torch_ema`` state beside them.
``tests/training/test_official_backend.py`` imports the real checkout's own checkpoints.
"""

from __future__ import annotations

import hashlib
import json
import sys
import types
from pathlib import Path

import pytest
import torch
import yaml

from curator.cli import main as curator_main
from curator.training.checkpoint import CheckpointError, load_model
from curator.training.cli import main as train_main
from curator.training.models import build_model
from curator.training.module import EnhancementModule
from curator.training.official_weights import (
    BSRNN_PREFIX,
    FLOWSE_PREFIX,
    import_official,
    official_to_ours,
    ours_to_official,
)

FLOWSE_CFG = {"model_type": "flowse", "n_fft": 1536, "hop_length": 384, "spec_transform_type": "exponent",
              "spec_abs_exponent": 0.667, "spec_factor": 0.065, "sigma_min": 0.05, "sigma_max": 0.5, "t_eps": 0.03,
              "T_rev": 1.0, "ema_decay": 0.999, "bsrnn_hidden": 8, "num_layer": 2, "learning_rate": 1e-4}
"""What the official FlowSE config holds that the import reads (conf/models/BSRNN_flowse.yaml, size 8 x 2)."""


def _seeded(name: str, seed: int, **options: object) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model(name, {"num_channels": 8, "num_layers": 2, **options})
    with torch.no_grad():  # norms' affine weights drawn too: a mix-up of them must show
        for key, p in model.named_parameters():
            if "norm" in key:
                p.add_(torch.randn_like(p) * 0.2)
    return model.eval()


def _save_official(path: Path, state: dict[str, torch.Tensor], cfg: dict[str, object], **extra: object) -> None:
    """A Lightning checkpoint as the official trainer writes it: the hyper-parameters object is pickled as
    ``baseline_code.config.Config`` (a module that exists only while this writes)."""
    package, module = types.ModuleType("baseline_code"), types.ModuleType("baseline_code.config")
    config_cls = type("Config", (), {"__module__": "baseline_code.config"})
    module.Config = config_cls
    sys.modules.update({"baseline_code": package, "baseline_code.config": module})
    try:
        hparams = config_cls()
        hparams.__dict__.update(cfg)
        torch.save({"epoch": 0, "global_step": 3, "pytorch-lightning_version": "2.4.0", "state_dict": state,
                    "hyper_parameters": {"cfg": hparams}, "optimizer_states": [], "lr_schedulers": [], **extra},
                   path)
    finally:
        del sys.modules["baseline_code"], sys.modules["baseline_code.config"]


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture
def official_bsrnn(tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    ours = _seeded("bsrnn", 0)
    path = tmp_path / "best_epoch=00-step=000003-val_loss=0.500.ckpt"
    _save_official(path, ours_to_official(ours.state_dict(), ours, "bsrnn", BSRNN_PREFIX),
                   {"model_type": "discriminative", "se_model": "bsrnn",
                    "model_configs": {"num_channel": 8, "num_layer": 2}})
    return path, ours


def test_official_layout_has_every_weight_of_the_official_networks() -> None:
    """The official networks at 8 x 2 hold 592 (SEModel) and 824 (FlowSEModel) tensors (listed from the checkout's
    modules); the mapping names every one, and back and forth is exact."""
    for name, count, options in (("bsrnn", 592, {}), ("flowse", 824, {"decoder_channels": 16})):
        model = _seeded(name, 0, **options)
        official = ours_to_official(model.state_dict(), model, name)
        assert len(official) == count
        back = official_to_ours(official, model, name)
        assert back.keys() == model.state_dict().keys()
        assert all(torch.equal(back[k], v) for k, v in model.state_dict().items())


# sha256 over the official names (sorted) and float32 bytes of an 8 x 2 model whose tensor i holds
# arange(numel) + i, exported by ours_to_official: the layout that loaded strictly into ESPnet's BSRNNSeparator and
# the checkout's FlowSE network and reproduced their outputs (session 25, benchmarks/check_*.py). A change of names,
# transposes or FlowSE's head order changes it, even one that its inverse would undo.
OFFICIAL_LAYOUT_SHA256 = {"bsrnn": "7c1512f3c917a46048463a44afbb2d9ec2a140f4b20ea229adc094a2ee8f026a",
                          "flowse": "b526ce1a47427f2db67b138ca5b1d646ac27460bc9fb7205cf2d55e3159c4163"}


@pytest.mark.parametrize("name", sorted(OFFICIAL_LAYOUT_SHA256))
def test_official_layout_is_the_one_checked_against_the_official_networks(name: str) -> None:
    model = build_model(name, {"num_channels": 8, "num_layers": 2} | ({"decoder_channels": 16} if name == "flowse"
                                                                       else {}))
    state = {k: torch.arange(v.numel(), dtype=torch.float32).reshape(v.shape) + i
             for i, (k, v) in enumerate(model.state_dict().items())}
    official = ours_to_official(state, model, name)
    digest = hashlib.sha256()
    for key in sorted(official):
        digest.update(key.encode())
        digest.update(official[key].contiguous().numpy().tobytes())
    assert digest.hexdigest() == OFFICIAL_LAYOUT_SHA256[name]


def test_bsrnn_checkpoint_is_read_safely_and_runs_as_the_same_network(official_bsrnn: tuple[Path, torch.nn.Module]
                                                                      ) -> None:
    path, ours = official_bsrnn
    with pytest.raises(Exception, match="Weights only load failed"):  # its Config is not a plain tensor/container
        torch.load(path, map_location="cpu", weights_only=True)
    model, name, options, meta = import_official(path)
    assert name == "bsrnn" and (options["num_channels"], options["num_layers"]) == (8, 2)
    assert options["residual_mask"] and meta == {"official_kind": "bsrnn", "official_weights": "raw",
                                                 "official_step": 3, "official_epoch": 0}
    assert _same_weights(model, ours)
    x = torch.randn(1, 8000, generator=torch.Generator().manual_seed(0)) * 0.1
    with torch.no_grad():
        assert torch.equal(model(x, 16000), ours(x, 16000))


def test_flowse_checkpoint_takes_its_moving_average(tmp_path: Path) -> None:
    raw, ema = _seeded("flowse", 0, decoder_channels=16), _seeded("flowse", 1, decoder_channels=16)
    state = ours_to_official(raw.state_dict(), raw, "flowse", FLOWSE_PREFIX)
    shadow = list(ours_to_official(ema.state_dict(), ema, "flowse", FLOWSE_PREFIX).values())
    path = tmp_path / "flow.ckpt"
    _save_official(path, state, FLOWSE_CFG | {"sigma_max": 0.4},
                   ema={"decay": 0.999, "num_updates": 3, "shadow_params": shadow, "collected_params": None})
    model, name, options, meta = import_official(path)
    assert name == "flowse" and meta["official_weights"] == "ema" and _same_weights(model, ema)
    assert (options["decoder_channels"], options["sigma_max"], options["n_fft"]) == (16, 0.4, 1536)
    model, *_ = import_official(path, weights="raw")
    assert _same_weights(model, raw)

    _save_official(tmp_path / "no_ema.ckpt", state, FLOWSE_CFG)
    with pytest.raises(CheckpointError, match="holds no EMA.*--weights raw"):
        import_official(tmp_path / "no_ema.ckpt")
    _save_official(tmp_path / "short.ckpt", state, FLOWSE_CFG, ema={"shadow_params": shadow[:-1]})
    with pytest.raises(CheckpointError, match="do not match"):
        import_official(tmp_path / "short.ckpt")
    _save_official(tmp_path / "t_rev.ckpt", state, FLOWSE_CFG | {"T_rev": 0.5})
    with pytest.raises(CheckpointError, match="T_rev = 0.5; flowse implements T_rev = 1.0 only"):
        import_official(tmp_path / "t_rev.ckpt", weights="raw")


def test_import_official_cli_writes_a_native_checkpoint(official_bsrnn: tuple[Path, torch.nn.Module],
                                                        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, ours = official_bsrnn
    out = tmp_path / "models" / "official" / "best.ckpt"
    assert curator_main(["import-official", str(path), "--out", str(out)]) == 0
    assert "(bsrnn, 8 x 2," in capsys.readouterr().out
    model, payload = load_model(out)
    assert _same_weights(model, ours) and payload["meta"]["official_step"] == 3
    assert payload["meta"]["imported_from"] == str(path) and len(payload["meta"]["sha256"]) == 64

    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    assert curator_main(["import-official", str(tmp_path / "junk.ckpt"), "--out", str(out)]) == 2
    torch.save({"state_dict": {"encoder.weight": torch.zeros(2)}}, tmp_path / "other.ckpt")
    assert curator_main(["import-official", str(tmp_path / "other.ckpt"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "junk.ckpt' cannot be read as an official baseline checkpoint" in err
    assert "no official BSRNN" in err and "encoder.weight" in err


def test_training_starts_from_init_from(official_bsrnn: tuple[Path, torch.nn.Module], corpus: dict[str, Path],
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path, ours = official_bsrnn  # 8 x 2; the tiny training profile is 8 x 1
    monkeypatch.chdir(tmp_path)
    first: list[dict[str, torch.Tensor]] = []
    plain = EnhancementModule._loss

    def loss(self: EnhancementModule, model: torch.nn.Module, batch, generator=None) -> torch.Tensor:  # noqa: ANN001
        if self.training and not first:
            first.append({k: v.detach().clone() for k, v in self.model.state_dict().items()})
        return plain(self, model, batch, generator)

    monkeypatch.setattr(EnhancementModule, "_loss", loss)
    args = ["--config", str(corpus["params"]), "--curated_list", str(corpus["curated"]), "--exp.name", "ft",
            f"train.init_from={path}"]
    assert train_main([*args, "train.model.options.num_layers=2"]) == 0
    assert all(torch.equal(first[0][k], v) for k, v in ours.state_dict().items())
    out = capsys.readouterr().out
    assert f"weights from train.init_from {path} (official bsrnn checkpoint, raw weights)" in out
    frozen = yaml.safe_load((tmp_path / "models" / "ft" / "config.yaml").read_text())
    assert frozen["init_from"]["path"] == str(path) and len(frozen["init_from"]["sha256"]) == 64
    assert json.loads((tmp_path / "metrics" / "train" / "metrics.json").read_text())["steps"] == 4

    assert train_main(args) == 2  # 8 x 1 cannot take 8 x 2 weights
    assert "differ in: num_layers (checkpoint 2, params 1)" in capsys.readouterr().err
    assert train_main([*args[:-1], "train.init_from=missing.ckpt"]) == 2
    assert "'train.init_from' = 'missing.ckpt' does not exist" in capsys.readouterr().err
    # the official trainer would ignore it: refused before anything runs, naming the official key
    assert train_main([*args, "train.backend=official", f"train.official.checkout={tmp_path / 'absent'}"]) == 2
    err = capsys.readouterr().err
    assert "'train.init_from' is implemented by the native backend" in err and "overrides: {init_from:" in err


def test_an_official_checkpoint_without_the_checkout_points_to_the_import(
        official_bsrnn: tuple[Path, torch.nn.Module], corpus: dict[str, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from curator.evaluation.cli import main as eval_main

    path, _ = official_bsrnn
    monkeypatch.chdir(tmp_path)
    assert eval_main(["--config", str(corpus["params"]), "--ckpt", str(path), "eval.num_workers=0",
                      f"train.official.checkout={tmp_path / 'absent'}"]) == 2
    err = capsys.readouterr().err
    assert "runs through the official inference" in err and f"curator import-official {path}" in err
