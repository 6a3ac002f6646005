"""Importing an ESPnet kept apart from this project's environment, for the checks of the rebuilt official models
(``check_rawnet3.py``, ``check_owsm_ctc.py``). ESPnet imports torchaudio at module level, for modules the rebuilt
models do not use; where the installed torchaudio cannot load, :func:`add_espnet_site` puts an empty stand-in
module in its place and says so."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types


class _Anything(types.ModuleType):
    """A module whose every attribute is another such module (import-time references only)."""

    def __getattr__(self, name: str) -> _Anything:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Anything(f"{self.__name__}.{name}")

    def __call__(self, *args: object, **kwargs: object) -> _Anything:
        return _Anything(f"{self.__name__}()")

    def __mro_entries__(self, bases: tuple) -> tuple:
        return (object,)


class _StandIn(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, package: str) -> None:
        self.package = package

    def find_spec(self, name, path, target=None):  # noqa: ANN001, ANN201 (importlib's protocol)
        if name == self.package or name.startswith(self.package + "."):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):  # noqa: ANN001, ANN201
        module = _Anything(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module) -> None:  # noqa: ANN001
        return None


def _torchaudio_loads() -> bool:
    try:
        import torchaudio  # noqa: F401
    except Exception:  # noqa: BLE001 (an OSError of a mismatched build as much as an ImportError)
        for name in [m for m in sys.modules if m == "torchaudio" or m.startswith("torchaudio.")]:
            del sys.modules[name]
        return False
    return True


def randomise_group_norms(module, std: float) -> None:  # noqa: ANN001 (any torch module)
    """Draw the affine weights of every ``GroupNorm`` in ``module`` around their init (1 and 0), which would hide
    a mix-up of them in a weight mapping (the equivalence checks ``check_bsrnn_espnet.py`` and
    ``check_flowse_official.py``)."""
    import torch

    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.GroupNorm) and m.affine:
                m.weight.copy_(torch.randn_like(m.weight) * std + 1.0)
                m.bias.copy_(torch.randn_like(m.bias) * std)


def add_espnet_site(site: str) -> bool:
    """Put the ``:``-separated folders of ``site`` first on ``sys.path``; True when torchaudio had to be stood in
    for."""
    stand_in = not _torchaudio_loads()
    if stand_in:
        sys.meta_path.insert(0, _StandIn("torchaudio"))
    sys.path[:0] = site.split(":")
    return stand_in
