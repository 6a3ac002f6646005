"""CI's reproducibility check names the file that differs, even on a fresh clone whose DVC cache is empty.

``benchmarks/check_lock.py`` compares the data stages' outputs with the committed ``dvc.lock``. A directory
output is one hash; to say which file in it changed, the check needs the committed listing, which a fresh clone
only has through ``benchmarks/lock_listings.json``. These tests keep that file in step with the lock and check
that the check uses it.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def _check_lock():
    spec = importlib.util.spec_from_file_location("check_lock", REPO / "benchmarks" / "check_lock.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("check_lock", module)  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def test_every_data_stage_directory_in_the_lock_has_its_listing() -> None:
    """Fails after a `dvc repro` that changed a data stage until `python benchmarks/check_lock.py
    --write-listings` has refreshed the listings (commit them with the lock)."""
    cl = _check_lock()
    lock = yaml.safe_load((REPO / "dvc.lock").read_text(encoding="utf-8"))
    listings = json.loads((REPO / cl.LISTINGS).read_text(encoding="utf-8"))
    wanted = cl.data_dir_outputs(lock)
    missing = {path for md5, path in wanted.items() if md5 not in listings}
    assert not missing, f"run `python benchmarks/check_lock.py --write-listings`: no listing for {sorted(missing)}"
    for md5 in wanted:  # each listing is the one its key names (DVC's own listing hash)
        assert cl.listing_md5(listings[md5]) == md5


def test_a_differing_file_is_named_from_the_committed_listings(tmp_path: Path) -> None:
    cl = _check_lock()
    out = tmp_path / "data" / "curated"
    (out / "sub").mkdir(parents=True)
    (out / "a.csv").write_text("utt_id\nu1\n")
    (out / "sub" / "b.json").write_text("{}\n")
    committed = cl.dir_listing(tmp_path, out, [])
    md5 = cl.listing_md5(committed)
    lock = {"stages": {"select": {"outs": [{"path": "data/curated", "md5": md5}]}}}
    assert cl.check(tmp_path, lock, ["select"], include_metrics=True) == []
    (out / "sub" / "b.json").write_text('{"x": 1}\n')  # another machine's bytes
    (problem,) = cl.check(tmp_path, lock, ["select"], include_metrics=True)
    assert "no " in problem.detail and "listing" in problem.detail  # an empty cache and no listings: unnamed
    (problem,) = cl.check(tmp_path, lock, ["select"], include_metrics=True, listings={md5: committed})
    assert problem.detail.startswith("first differing file: sub/b.json (md5 ")


def test_write_listings_takes_the_workspace_only_when_it_matches_the_lock(tmp_path: Path) -> None:
    cl = _check_lock()
    (tmp_path / "benchmarks").mkdir()
    out = tmp_path / "data" / "curated"
    out.mkdir(parents=True)
    (out / "a.csv").write_text("utt_id\nu1\n")
    md5 = cl.listing_md5(cl.dir_listing(tmp_path, out, []))
    lock = {"stages": {"select": {"outs": [{"path": "data/curated", "md5": md5}]},
                       "score": {"outs": [{"path": "data/scores", "md5": "0" * 32 + ".dir"}]}}}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))
    written, missing = cl.write_listings(tmp_path, tmp_path / "dvc.lock")
    assert written == 1 and missing == ["data/scores"]
    assert list(json.loads((tmp_path / cl.LISTINGS).read_text())) == [md5]
