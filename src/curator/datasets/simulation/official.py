"""Run the official URGENT simulation from a checkout in ``third_party/`` (argument lists, never a shell).

``generate_data_param.py --config C`` draws ``meta.tsv``; ``simulate_data_from_param.py --config C
--meta_tsv M --nj N`` renders it. Output and log folders are passed as absolute paths, so ``meta.tsv``
holds absolute file paths; those are rewritten relative to the folder that holds ``out_dir`` (the
dataset's root) before the official list layout is written, so the folder can be moved into place and two
clones produce identical files.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from curator.datasets.kaldi import ListError, read_meta_tsv
from curator.datasets.simulation.render import write_lists
from curator.io import executable

GENERATE = "simulation/generate_data_param.py"
SIMULATE = "simulation/simulate_data_from_param.py"
CHUNKSIZE = 100


class OfficialSimulationError(RuntimeError):
    """The official checkout is missing or one of its scripts failed."""


def official_commands(python: str, repo: Path, config: Path, out_dir: Path, nj: int, highpass: bool
                      ) -> list[list[str]]:
    """The two argument lists run inside ``repo``.

    The official ``--highpass`` is parsed with ``type=bool`` (any non-empty string is true), so it is passed
    only when wanted.
    """
    log_dir = out_dir / "log"
    common = ["--config", str(config), "--output_dir", str(out_dir), "--log_dir", str(log_dir)]
    simulate = [python, SIMULATE, *common, "--meta_tsv", str(log_dir / "meta.tsv"), "--nj", str(nj),
                "--chunksize", str(CHUNKSIZE)]
    return [[python, GENERATE, *common], simulate + (["--highpass", "True"] if highpass else [])]


def run_official_simulation(python: str, repo: Path, config: str, out_dir: Path, list_dir: Path, nj: int,
                            highpass: bool) -> int:
    """Simulate with the official scripts into ``out_dir`` and write the lists into ``list_dir``."""
    repo = repo.resolve()
    missing = [s for s in (GENERATE, SIMULATE) if not (repo / s).is_file()]
    if missing:
        raise OfficialSimulationError(
            f"official checkout not found: {repo} lacks {', '.join(missing)}. Clone "
            "urgent-challenge/urgent2026_challenge_track1 into that folder (see third_party/README.md) or set "
            "dataset.urgent2026.simulate.baseline_repo")
    cfg = Path(config) if Path(config).is_absolute() else repo / config
    if not cfg.is_file():
        raise OfficialSimulationError(f"simulation config '{cfg}' does not exist (dataset.urgent2026.simulate.config)")
    try:  # the scripts run inside the checkout: a relative interpreter path must not be read from there
        python = executable(python, "dataset.urgent2026.simulate.python")
    except FileNotFoundError as exc:
        raise OfficialSimulationError(f"{exc}; name an interpreter with the checkout's requirements") from exc
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    for cmd in official_commands(python, repo, cfg, out_dir, nj, highpass):
        print("[urgent2026] running:", " ".join(cmd))
        try:
            done = subprocess.run(cmd, cwd=repo, check=False)
        except OSError as exc:
            raise OfficialSimulationError(f"'{cmd[0]}' could not start (cwd {repo}): {exc}") from exc
        if done.returncode != 0:
            raise OfficialSimulationError(f"'{' '.join(cmd)}' failed with exit code {done.returncode} (cwd {repo})")
    meta_path = out_dir / "log" / "meta.tsv"
    try:
        rows = list(read_meta_tsv(meta_path).values())
    except ListError as exc:
        raise OfficialSimulationError(f"the official simulation wrote no usable log: {exc}") from exc
    root = out_dir.parent
    for row in rows:
        for key in ("noisy_path", "clean_path"):
            path = Path(row[key])
            if path.is_absolute() and path.is_relative_to(root):
                row[key] = path.relative_to(root).as_posix()
    write_lists(rows, {}, list_dir, meta_path)
    return len(rows)
