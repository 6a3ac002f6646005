"""Import guard for a broken torchaudio (a wheel built for another torch): transformers and distillmos
import it at module level without using it for what curator calls.

When ``import torchaudio`` fails to load its compiled library, a stand-in module takes its place so those
imports succeed; touching any attribute of it raises an AttributeError that says why. A working torchaudio
is left alone.
"""

from __future__ import annotations

import importlib.util
import sys
import types


class _BrokenTorchaudio(types.ModuleType):
    def __init__(self, reason: str) -> None:
        super().__init__("torchaudio")
        self.__spec__ = importlib.util.find_spec("torchaudio")
        self._reason = reason

    def __getattr__(self, name: str) -> object:
        raise AttributeError(f"torchaudio.{name} is unavailable: the installed torchaudio does not load beside this "
                          f"torch ({self._reason}); curator reads and resamples audio with soundfile/soxr instead")


def guard_torchaudio() -> bool:
    """Make ``import torchaudio`` safe; returns True when the real torchaudio works."""
    if isinstance(sys.modules.get("torchaudio"), _BrokenTorchaudio) or importlib.util.find_spec("torchaudio") is None:
        return False
    try:
        import torchaudio  # noqa: F401
    except (OSError, ImportError, RuntimeError) as exc:
        for name in [m for m in sys.modules if m == "torchaudio" or m.startswith("torchaudio.")]:
            del sys.modules[name]
        sys.modules["torchaudio"] = _BrokenTorchaudio(f"{type(exc).__name__}: {exc}")
        return False
    return True
