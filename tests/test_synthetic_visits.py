"""Several tracklets per identity and camera, and gallery-only distractors (``medium``)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest

from evreid.data import build_dataset
from evreid.data.synthetic import generate_synthetic, get_preset
from evreid.data.synthetic.generator import tracklet_slots
from evreid.data.synthetic.protocols import PRESETS, Preset
from evreid.data.synthetic.tracklet import plan_tracklet
from evreid.errors import EvreidError

# a tiny multi-visit preset: 6 identities (3 test), 2 cameras, 2 visits, 2 distractors
VISITS = Preset("visits", num_ids=6, num_cameras=2, height=64, width=32, min_len=6, max_len=8,
                render_rate=4, event_rate=2, tracklets_per_camera=2, distractors=2)


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def visits(tmp_path_factory) -> Path:
    # workers=1: the preset exists only in this process (spawned workers would not see it)
    root = tmp_path_factory.mktemp("visits") / "clean"
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(PRESETS, "visits", VISITS)
        generate_synthetic(root, "visits", "clean", seed=5, workers=1)
    return root


def test_medium_has_power_and_distractors():
    medium = get_preset("medium")
    assert medium.num_ids // 2 >= 150                      # test identities
    assert medium.tracklets_per_camera >= 2 and medium.distractors >= 50
    slots = tracklet_slots(medium)
    assert len(slots) == len(set(slots)) == 300 * 2 * 2 + 100 * 1 * 2
    assert {cam for pid, cam, _ in slots if pid > 300} == {1}   # distractors: gallery only


def test_one_visit_presets_keep_their_cards():
    # the new fields are left out at their defaults: old cache keys stay valid
    for name in ("tiny", "small", "full"):
        assert set(get_preset(name).to_dict()) == {
            "name", "num_ids", "num_cameras", "height", "width", "min_len", "max_len", "fps",
            "render_rate", "event_rate", "num_splits"}
    assert get_preset("medium").to_dict()["tracklets_per_camera"] == 2
    with pytest.raises(EvreidError, match="tracklets_per_camera"):
        Preset("bad", 4, 2, 64, 32, 6, 8, tracklets_per_camera=0)


def test_visit_zero_is_the_one_visit_tracklet_and_later_visits_differ():
    one = Preset("one", num_ids=6, num_cameras=2, height=64, width=32, min_len=6, max_len=8,
                 render_rate=4, event_rate=2)
    first = plan_tracklet(5, one, 3, 1, "occlusion")
    again = plan_tracklet(5, VISITS, 3, 1, "occlusion", visit=0)
    assert (first.length, first.phase0, first.crops, first.occluders) == \
        (again.length, again.phase0, again.crops, again.occluders)
    later = [plan_tracklet(5, VISITS, pid, 1, "clean", visit=1) for pid in range(1, 41)]
    assert all(p.phase0 != plan_tracklet(5, VISITS, p.pid, 1, "clean").phase0 for p in later)
    # a later visit walks either way through the view
    assert Counter(p.facing for p in later).keys() == {1, -1}


def test_layout_and_determinism(visits, tmp_path):
    card = json.loads((visits / "dataset_card.json").read_text())
    assert card["distractors"] == ["person_0007", "person_0008"]
    assert len(card["tracklets"]) == 6 * 2 * 2 + 2 * 1 * 2
    assert len(card["identities"]) == 8
    for t in card["tracklets"]:
        assert t["tracklet"] == f"{t['person']}_{t['visit'] + 1}"
        folder = visits / card["cameras"][t["cam"]]["name"] / t["tracklet"]
        assert len(list(folder.glob("*.png"))) == t["frames"]
        assert (visits / "events" / card["cameras"][t["cam"]]["name"]
                / f"{t['tracklet']}.evs").is_file()
    splits = json.loads((visits / "splits_synthetic.json").read_text())
    assert all("person_0007" not in s["train"] + s["test"] for s in splits)
    other = tmp_path / "again"
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(PRESETS, "visits", VISITS)
        generate_synthetic(other, "visits", "clean", seed=5, workers=1)
    assert tree_hashes(other) == tree_hashes(visits)


def test_loader_query_gallery_and_distractors(visits):
    data = build_dataset("synthetic_event", visits, split_id=1)
    split = json.loads((visits / "splits_synthetic.json").read_text())[1]
    test_pids = {int(p[-4:]) for p in split["test"]}
    assert {t.pid for t in data.query} == test_pids
    assert len(data.query) == 3 * 2 and {t.camid for t in data.query} == {0}
    assert len(data.gallery) == 3 * 2 + 2 * 2 and {t.camid for t in data.gallery} == {1}
    assert {t.pid for t in data.gallery} == test_pids | {7, 8}
    # every query has both visits of its identity in the gallery as true matches
    for q in data.query:
        assert sum(g.pid == q.pid for g in data.gallery) == 2
    assert len(data.train) == 3 * 2 * 2 and data.num_train_pids == 3
    assert all(t.events and t.events.endswith(".evs") for t in data.query + data.gallery)
    keys = {t.key for t in data.query}
    assert f"cam_a/person_{min(test_pids):04d}_2" in keys


def test_lookalike_groups_share_the_outfit_not_build_or_gait():
    from evreid.data.synthetic.tracklet import identity_of

    medium = get_preset("medium")
    assert [medium.outfit_of(p) for p in (1, 4, 5, 300)] == [0, 0, 1, 74]
    assert [medium.outfit_of(p) for p in (301, 375, 376)] == [0, 74, 0]   # distractors
    assert get_preset("small").outfit_of(7) is None
    group = [identity_of(0, pid, medium.outfit_of(pid)) for pid in (1, 2, 3, 4, 301)]
    assert all(g.clothing == group[0].clothing for g in group)
    assert len({g.build for g in group}) == len({g.gait for g in group}) == 5
    assert identity_of(0, 5, medium.outfit_of(5)).clothing != group[0].clothing
    # build and gait are those the identity has without a group
    assert identity_of(0, 2, 0).gait == identity_of(0, 2).gait
