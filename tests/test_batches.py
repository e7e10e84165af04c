"""TopDownDataset.batches: the training's batches, built ahead in a thread or by worker processes, from images
held in memory or read from disk, are the same batches."""
import json

import numpy as np
import pytest

from edge_pose.config import AugmentCfg
from edge_pose.train.dataset import PersonSet, TopDownDataset, cached_bytes, load_image

AUG = AugmentCfg(zoom_out_prob=0.5, flare_prob=0.5, negative_prob=0.3)


def _epoch(person_set, seed=7, n=12, batch=4, **options):
    data = TopDownDataset([person_set], [1.0], AUG, seed=seed)
    data.input_size = (96, 128)
    return list(data.batches(n, batch, **options)), data.rng.random()


def _assert_same(a, b):
    assert len(a) == len(b)
    for batch_a, batch_b in zip(a, b):
        for x, y in zip(batch_a, batch_b):
            np.testing.assert_array_equal(x, y)


def test_prefetched_batches_equal_the_plain_ones(coco_train_set):
    """The batch-building thread draws the same random augmentations in the same order."""
    (ahead, after_a), (plain, after_b) = _epoch(coco_train_set, prefetch=True), _epoch(coco_train_set, prefetch=False)
    assert len(plain) == 3
    _assert_same(ahead, plain)
    assert after_a == after_b  # the generator is left where the plain loop leaves it


def test_worker_processes_build_the_same_batches(coco_train_set):
    pytest.importorskip("torch")
    plain, after = _epoch(coco_train_set, n=40, prefetch=False)
    workers, after_w = _epoch(coco_train_set, n=40, workers=2)
    _assert_same(workers, plain)
    assert after == after_w
    other_seed, _ = _epoch(coco_train_set, seed=8, n=40, workers=2)
    assert not np.array_equal(other_seed[0][0], plain[0][0])


def test_images_read_from_disk_give_the_cached_batches(coco_train_set, shared_data):
    root = shared_data / "coco_train"
    disk = PersonSet(str(root / "person_keypoints.json"), str(root / "images"), "coco_train", progress=False,
                     cache=False)
    assert len(disk.images) == len(coco_train_set.images) and not isinstance(disk.images, list)
    np.testing.assert_array_equal(disk.images[0], coco_train_set.images[0])
    np.testing.assert_array_equal(disk.boxes, coco_train_set.boxes)
    _assert_same(_epoch(disk, prefetch=False)[0], _epoch(coco_train_set, prefetch=False)[0])


def test_an_image_of_another_size_than_its_json_says_is_refused(shared_data):
    root = shared_data / "coco_train"
    im = json.loads((root / "person_keypoints.json").read_text())["images"][0]
    path = str(root / "images" / im["file_name"])
    assert load_image(path, 1.0, (im["height"], im["width"])).shape == (im["height"], im["width"], 3)
    with pytest.raises(ValueError, match="annotation file says"):
        load_image(path, 1.0, (im["height"] + 1, im["width"]))
    with pytest.raises(FileNotFoundError, match="cannot read image"):
        load_image(str(root / "images" / "nowhere.jpg"), 1.0)


def test_cached_bytes_counts_the_decoded_images(coco_train_set, shared_data):
    expected = sum(im.nbytes for im in coco_train_set.images)
    assert cached_bytes(str(shared_data / "coco_train" / "person_keypoints.json")) == expected


def test_the_cache_budget_sends_what_does_not_fit_to_disk(shared_data, tmp_path):
    from _train_helpers import short_run_config

    from edge_pose.train.loop import cache_plan

    cfg = short_run_config(shared_data, tmp_path, "cache")
    cfg.train_sets = cfg.train_sets * 2
    size = cached_bytes(cfg.train_sets[0].ann)
    assert cache_plan(cfg) == [True, True]
    cfg.train.image_cache_gb = 1.5 * size / 1e9
    assert cache_plan(cfg) == [True, False]
    cfg.train.image_cache_gb = 0.0
    assert cache_plan(cfg) == [False, False]
