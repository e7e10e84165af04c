"""COCO-format top-down datasets: every labelled person is a sample; several sets mix by sampling weight."""
from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
from tqdm import tqdm

from edge_pose import preprocess as pre
from edge_pose.config import ConfigError
from edge_pose.persons import box_coverage
from edge_pose.skeleton import FLIP_INDEX, NUM_KEYPOINTS
from edge_pose.train import augment, paste
from edge_pose.train.targets import encode_heatmaps

MAX_SIDE = 800  # images are cached downscaled to this longest side: crops never need more


class PersonSet:
    """All non-crowd persons with keypoints of one COCO-format json, images decoded once into memory."""

    def __init__(self, ann_path, images_dir, name="", joint_weights=None, head_top=False, max_side=MAX_SIDE,
                 progress=True, limit=None, complete=False, cutouts=False):
        with open(ann_path) as f:
            coco = json.load(f)
        self.name = name or os.path.basename(os.path.dirname(ann_path))
        self.joint_weights = np.asarray(joint_weights if joint_weights is not None else [1.0] * NUM_KEYPOINTS,
                                        np.float32)
        imgs = {im["id"]: im for im in coco["images"]}
        anns = [a for a in coco["annotations"]
                if not a.get("iscrowd", 0) and a.get("num_keypoints", 0) > 0 and a["bbox"][2] > 1 and a["bbox"][3] > 1]
        if limit:
            anns = anns[:limit]
        self.images, self.boxes, self.joints, self.visible, self.image_index = [], [], [], [], []
        self.ann_ids = []
        self.complete = bool(complete)  # every person of its images annotated: background crops allowed
        self.person_boxes = []  # per cached image: boxes (N, 4) of every annotation, crowds and keypoint-less too
        # with `cutouts`: (RGB, alpha) of every segmented person of the cached images, for augment.paste_prob
        self.cutouts = []
        anns_of = {}
        for a in coco["annotations"]:
            anns_of.setdefault(a["image_id"], []).append(a)
        index = {}
        for a in tqdm(anns, desc="load " + self.name, disable=not progress, leave=False):
            im = imgs[a["image_id"]]
            if im["id"] not in index:
                img = cv2.imread(os.path.join(images_dir, im["file_name"]), cv2.IMREAD_COLOR)
                if img is None:
                    raise FileNotFoundError("cannot read image %s" % os.path.join(images_dir, im["file_name"]))
                s = min(1.0, max_side / max(img.shape[:2]))
                if s < 1.0:
                    img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
                index[im["id"]] = (len(self.images), s)
                self.images.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
                self.person_boxes.append(np.asarray([b["bbox"] for b in anns_of[im["id"]]], np.float32)
                                         .reshape(-1, 4) * s)
                if cutouts:
                    self.cutouts += paste.image_cutouts(self.images[-1], anns_of[im["id"]], s)
            i, s = index[im["id"]]
            kp = np.asarray(a["keypoints"], np.float32).reshape(-1, 3)
            box = np.asarray(a["bbox"], np.float32)
            if head_top and a.get("lsp_extra_keypoints"):
                ht = np.asarray(a["lsp_extra_keypoints"], np.float32).reshape(-1, 3)[-1]
                if ht[2] > 0:  # widen the box so it holds the head top
                    x0, y0 = min(box[0], ht[0]), min(box[1], ht[1])
                    x1, y1 = max(box[0] + box[2], ht[0]), max(box[1] + box[3], ht[1])
                    box = np.array([x0, y0, x1 - x0, y1 - y0], np.float32)
            self.image_index.append(i)
            self.boxes.append(box * s)
            self.joints.append(kp[:, :2] * s)
            self.visible.append(kp[:, 2])
            self.ann_ids.append(a["id"])

    def __len__(self):
        return len(self.boxes)


class TopDownDataset:
    """Samples persons from several PersonSets by weight; each item is (image CHW float32, heatmaps, weights)."""

    def __init__(self, sets, weights, aug_cfg, input_size=pre.INPUT_SIZE, sigma=2.0, augment_on=True, seed=0):
        self.sets = sets
        w = np.asarray(weights, np.float64)
        self.probs = w / w.sum()
        self.aug = aug_cfg
        self.input_size = tuple(input_size)
        self.sigma = sigma
        self.augment_on = augment_on
        self.negative_prob = float(aug_cfg.negative_prob) if augment_on else 0.0
        self.paste_prob = float(aug_cfg.paste_prob) if augment_on else 0.0
        self.cutouts = [c for s in sets for c in s.cutouts]
        if self.paste_prob and not self.cutouts:
            raise ConfigError("augment.paste_prob needs people to paste: no train set has a polygon segmentation "
                              "(or none was loaded with cutouts=True)")
        self.rng = np.random.default_rng(seed)

    @property
    def heatmap_size(self):
        return (self.input_size[0] // pre.HEATMAP_STRIDE, self.input_size[1] // pre.HEATMAP_STRIDE)

    def epoch_indices(self, n):
        """n (set, person) pairs drawn by set weight, uniformly within a set."""
        which = self.rng.choice(len(self.sets), size=n, p=self.probs)
        return [(int(s), int(self.rng.integers(len(self.sets[s])))) for s in which]

    def background_box(self, ds, person_idx, tries=10, max_overlap=0.1):
        """A box of this person's size elsewhere in its image whose crop covers at most `max_overlap` of any
        annotated person's box; None if `tries` random places all overlap someone (or the set is not
        `complete`, so an unannotated person could be anywhere)."""
        if not ds.complete:
            return None
        img = ds.images[ds.image_index[person_idx]]
        others = ds.person_boxes[ds.image_index[person_idx]]
        h, w = img.shape[:2]
        _, size = pre.box_to_center_scale(ds.boxes[person_idx], self.input_size)
        lo, hi = self.aug.negative_scale
        size = size * float(np.exp(self.rng.uniform(np.log(lo), np.log(hi))))
        for _ in range(tries):
            center = self.rng.uniform([0, 0], [w, h])
            crop = np.concatenate([center - size / 2, size])
            if not len(others) or box_coverage(crop, others).max() <= max_overlap:
                return center, size
        return None

    def negative(self, ds, person_idx):
        """(image, zero heatmaps, full weights) of a background crop, or None when no place is free."""
        found = self.background_box(ds, person_idx)
        if found is None:
            return None
        mat = pre.affine_matrix(found[0], found[1], self.input_size, 0.0)
        crop = pre.crop(ds.images[ds.image_index[person_idx]], mat, self.input_size)
        if self.aug.flip and self.rng.random() < 0.5:
            crop = np.ascontiguousarray(crop[:, ::-1])
        crop = augment.sun_flare(crop, self.aug.flare_prob, self.rng)
        crop = augment.color_jitter(crop, self.aug.color_jitter, self.rng)
        w_hm, h_hm = self.heatmap_size
        heat = np.zeros((NUM_KEYPOINTS, h_hm, w_hm), np.float32)
        return pre.normalize(crop[None])[0], heat, np.ones(NUM_KEYPOINTS, np.float32)

    def item(self, set_idx, person_idx):
        ds = self.sets[set_idx]
        rng = self.rng
        if self.negative_prob and rng.random() < self.negative_prob:
            sample = self.negative(ds, person_idx)
            if sample is not None:
                return sample
        img = ds.images[ds.image_index[person_idx]]
        joints, visible = ds.joints[person_idx], ds.visible[person_idx]
        w_in, h_in = self.input_size
        if self.augment_on:
            center, size, rot, flip = augment.sample_transform(ds.boxes[person_idx], joints, visible,
                                                               self.input_size, self.aug, rng)
        else:
            center, size = pre.box_to_center_scale(ds.boxes[person_idx], self.input_size)
            rot, flip = 0.0, False
        mat = pre.affine_matrix(center, size, self.input_size, rot)
        if flip:
            mat = augment.flip_matrix(mat, w_in)
        crop = pre.crop(img, mat, self.input_size)
        if self.augment_on:
            crop = augment.sun_flare(crop, self.aug.flare_prob, rng)
            crop = paste.paste_person(crop, self.cutouts, self.paste_prob, rng)
            crop = augment.color_jitter(crop, self.aug.color_jitter, rng)
            crop = augment.occlude(crop, self.aug.occlusion_prob, rng)
            crop = augment.blur_like(crop, rng, self.aug.blur_prob)
        pts = pre.apply_affine(joints, mat)
        vis = visible.copy()
        jw = ds.joint_weights
        if flip:
            pts, vis, jw = pts[list(FLIP_INDEX)], vis[list(FLIP_INDEX)], jw[list(FLIP_INDEX)]
        w_hm, h_hm = self.heatmap_size
        pts_hm = pts * np.array([(w_hm - 1) / (w_in - 1), (h_hm - 1) / (h_in - 1)])
        inside = (pts[:, 0] >= 0) & (pts[:, 0] <= w_in - 1) & (pts[:, 1] >= 0) & (pts[:, 1] <= h_in - 1)
        heat, weight = encode_heatmaps(pts_hm, (vis > 0) & inside, (w_hm, h_hm), self.sigma)
        return pre.normalize(crop[None])[0], heat, weight * jw

    def batches(self, n, batch_size, prefetch=True):
        """Yields (x, heatmaps, weights) NumPy batches for one epoch of n samples. With `prefetch` one worker
        thread builds the next batch while the caller trains on this one (OpenCV and NumPy release the GIL);
        batches are built one after another in that thread, so the random draws and the batches are the same."""
        idx = self.epoch_indices(n)

        def make(b):
            items = [self.item(s, p) for s, p in idx[b:b + batch_size]]
            return tuple(np.stack(z) for z in zip(*items))

        starts = range(0, len(idx) - batch_size + 1, batch_size)
        if not prefetch:
            yield from (make(b) for b in starts)
            return
        with ThreadPoolExecutor(1, thread_name_prefix="batches") as pool:
            pending = None
            for b in starts:
                ahead = pool.submit(make, b)
                if pending is not None:
                    yield pending.result()
                pending = ahead
            if pending is not None:
                yield pending.result()
