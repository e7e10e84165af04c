"""TopDownDataset.batches: the training's batches, built ahead in a worker thread."""
import numpy as np

from edge_pose.config import AugmentCfg
from edge_pose.train.dataset import TopDownDataset


def test_prefetched_batches_equal_the_plain_ones(coco_train_set):
    """The batch-building thread draws the same random augmentations in the same order."""
    aug = AugmentCfg(zoom_out_prob=0.5, flare_prob=0.5)
    runs = []
    for prefetch in (True, False):
        data = TopDownDataset([coco_train_set], [1.0], aug, seed=7)
        data.input_size = (96, 128)
        runs.append(list(data.batches(12, 4, prefetch=prefetch)) + [data.rng.random()])
    assert len(runs[0]) == len(runs[1]) == 4
    for a, b in zip(runs[0][:3], runs[1][:3]):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    assert runs[0][3] == runs[1][3]  # the generator is left where the plain loop leaves it
