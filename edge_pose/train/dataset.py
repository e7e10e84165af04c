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
from edge_pose.decode import input_to_heatmap
from edge_pose.persons import box_coverage
from edge_pose.skeleton import FLIP_INDEX, NUM_KEYPOINTS
from edge_pose.train import augment, paste
from edge_pose.train.targets import blend_targets, encode_heatmaps, teacher_targets

MAX_SIDE = 800  # images are cached downscaled to this longest side: crops never need more
MAX_CUTOUT_IMAGES = 2000  # copy-paste cuts people out of at most this many images of a set (full COCO: 57k)


def load_image(path, scale, shape=None):
    """RGB uint8 of an image file resized by `scale` (< 1: INTER_AREA), as a PersonSet holds it. shape: the
    (height, width) its annotation file gives, checked (the set's coordinates were scaled by it)."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError("cannot read image %s" % path)
    if shape is not None and tuple(img.shape[:2]) != tuple(shape):
        raise ValueError("image %s is %dx%d, its annotation file says %dx%d" % (path, img.shape[1], img.shape[0],
                                                                              shape[1], shape[0]))
    if scale < 1.0:
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class DiskImages:
    """A PersonSet's images read from disk at each access instead of held in memory (a set too large to cache,
    such as full COCO): item i is what the cache would hold."""

    def __init__(self):
        self.paths, self.scales, self.shapes = [], [], []

    def add(self, path, scale, shape):
        self.paths.append(path)
        self.scales.append(scale)
        self.shapes.append(shape)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return load_image(self.paths[i], self.scales[i], self.shapes[i])


def head_top_box(ann):
    """An annotation's bbox (x, y, w, h) widened to hold its `lsp_extra_keypoints` head top (LSPET's boxes are the
    extent of the labelled joints and can cut off the head); the bbox as it is when there is none."""
    box = np.asarray(ann["bbox"], np.float32)
    if ann.get("lsp_extra_keypoints"):
        ht = np.asarray(ann["lsp_extra_keypoints"], np.float32).reshape(-1, 3)[-1]
        if ht[2] > 0:
            x0, y0 = min(box[0], ht[0]), min(box[1], ht[1])
            x1, y1 = max(box[0] + box[2], ht[0]), max(box[1] + box[3], ht[1])
            box = np.array([x0, y0, x1 - x0, y1 - y0], np.float32)
    return box


def read_coco(ann_path):
    with open(ann_path) as f:
        return json.load(f)


def cached_bytes(coco, max_side=MAX_SIDE):
    """Bytes the decoded images of a COCO json's persons (a path or the loaded dict) would take in a PersonSet's
    cache (RGB at most `max_side`), from the image sizes the json gives; None when an image lacks them."""
    coco = read_coco(coco) if isinstance(coco, str) else coco
    wanted = set(a["image_id"] for a in coco["annotations"]
                 if not a.get("iscrowd", 0) and a.get("num_keypoints", 0) > 0)
    total = 0
    for im in coco["images"]:
        if im["id"] in wanted:
            if not im.get("width") or not im.get("height"):
                return None
            s = min(1.0, max_side / max(im["width"], im["height"]))
            total += 3 * int(round(im["width"] * s)) * int(round(im["height"] * s))
    return total


class PersonSet:
    """All non-crowd persons with keypoints of one COCO-format json. Its images are decoded once into memory
    (`cache`, the default) or, with cache=False, read from disk each time a sample needs one (the json's image
    width and height then give the scale, and each read is checked against them). `coco`: the json already
    loaded, so that it is not read again. `teacher_labels`: a teacher's keypoints of these persons
    ({annotation id: (17, 3) x, y, score in image pixels}, `teacher_labels.load`), kept as `teacher` (None
    for a person the teacher did not label)."""

    def __init__(self, ann_path, images_dir, name="", joint_weights=None, head_top=False, max_side=MAX_SIDE,
                 progress=True, limit=None, complete=False, cutouts=False, cache=True,
                 max_cutout_images=MAX_CUTOUT_IMAGES, coco=None, teacher_labels=None):
        coco = read_coco(ann_path) if coco is None else coco
        self.name = name or os.path.basename(os.path.dirname(ann_path))
        self.joint_weights = np.asarray(joint_weights if joint_weights is not None else [1.0] * NUM_KEYPOINTS,
                                        np.float32)
        imgs = {im["id"]: im for im in coco["images"]}
        anns = [a for a in coco["annotations"]
                if not a.get("iscrowd", 0) and a.get("num_keypoints", 0) > 0 and a["bbox"][2] > 1 and a["bbox"][3] > 1]
        if limit:
            anns = anns[:limit]
        self.images = [] if cache else DiskImages()
        self.boxes, self.joints, self.visible, self.image_index = [], [], [], []
        self.ann_ids = []
        self.teacher = []  # per person: (17, 3) teacher keypoints in cached-image pixels, or None
        self.complete = bool(complete)  # every person of its images annotated: background crops allowed
        self.person_boxes = []  # per cached image: boxes (N, 4) of every annotation, crowds and keypoint-less too
        # with `cutouts`: (RGB, alpha) of every segmented person of the cached images, for augment.paste_prob
        self.cutouts = []
        anns_of = {}
        for a in coco["annotations"]:
            anns_of.setdefault(a["image_id"], []).append(a)
        index = {}
        cutout_images = 0
        for a in tqdm(anns, desc="load " + self.name, disable=not progress, leave=False):
            im = imgs[a["image_id"]]
            if im["id"] not in index:
                path = os.path.join(images_dir, im["file_name"])
                shape = (int(im["height"]), int(im["width"])) if im.get("width") and im.get("height") else None
                cut = cutouts and cutout_images < max_cutout_images and any(
                    isinstance(b.get("segmentation"), list) and b["segmentation"] for b in anns_of[im["id"]])
                img = None
                if cache or cut or shape is None:  # decoded now (read from disk later: checked against the json)
                    img = load_image(path, 1.0, None if cache else shape)
                    shape = img.shape[:2]
                s = min(1.0, max_side / max(shape))
                if img is not None and s < 1.0:
                    img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
                index[im["id"]] = (len(self.images), s)
                if cache:
                    self.images.append(img)
                else:
                    self.images.add(path, s, shape)
                self.person_boxes.append(np.asarray([b["bbox"] for b in anns_of[im["id"]]], np.float32)
                                         .reshape(-1, 4) * s)
                if cut:
                    cutout_images += 1
                    self.cutouts += paste.image_cutouts(img, anns_of[im["id"]], s)
            i, s = index[im["id"]]
            kp = np.asarray(a["keypoints"], np.float32).reshape(-1, 3)
            box = head_top_box(a) if head_top else np.asarray(a["bbox"], np.float32)
            self.image_index.append(i)
            self.boxes.append(box * s)
            self.joints.append(kp[:, :2] * s)
            self.visible.append(kp[:, 2])
            self.ann_ids.append(a["id"])
            t = teacher_labels.get(a["id"]) if teacher_labels else None
            self.teacher.append(None if t is None else np.asarray(t, np.float32) * np.float32([s, s, 1.0]))

    def __len__(self):
        return len(self.boxes)


class TopDownDataset:
    """Samples persons from several PersonSets by weight; each item is (image CHW float32, heatmaps, weights).

    With `distill_weight` (sets that carry teacher labels: `teacher_labels`), each target is the blend of the
    ground truth's and the teacher's (`targets.blend_targets`, weighted 1 - distill_weight and distill_weight; hard
    pseudo-labels with `min_score`): the teacher's keypoints follow the crop's affine and flip as the labels do, so
    no teacher runs while training."""

    def __init__(self, sets, weights, aug_cfg, input_size=pre.INPUT_SIZE, sigma=2.0, augment_on=True, seed=0,
                 distill_weight=None, min_score=None):
        self.sets = sets
        self.distill_weight = distill_weight
        self.min_score = min_score
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

    def background_box(self, ds, person_idx, rng=None, tries=10, max_overlap=0.1):
        """A box of this person's size elsewhere in its image whose crop covers at most `max_overlap` of any
        annotated person's box; None if `tries` random places all overlap someone (or the set is not
        `complete`, so an unannotated person could be anywhere)."""
        if not ds.complete:
            return None
        rng = self.rng if rng is None else rng
        img = ds.images[ds.image_index[person_idx]]
        others = ds.person_boxes[ds.image_index[person_idx]]
        h, w = img.shape[:2]
        _, size = pre.box_to_center_scale(ds.boxes[person_idx], self.input_size)
        lo, hi = self.aug.negative_scale
        size = size * float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        for _ in range(tries):
            center = rng.uniform([0, 0], [w, h])
            crop = np.concatenate([center - size / 2, size])
            if not len(others) or box_coverage(crop, others).max() <= max_overlap:
                return center, size
        return None

    def negative(self, ds, person_idx, rng):
        """(image, zero heatmaps, full weights) of a background crop, or None when no place is free."""
        found = self.background_box(ds, person_idx, rng)
        if found is None:
            return None
        mat = pre.affine_matrix(found[0], found[1], self.input_size, 0.0)
        crop = pre.crop(ds.images[ds.image_index[person_idx]], mat, self.input_size)
        if self.aug.flip and rng.random() < 0.5:
            crop = np.ascontiguousarray(crop[:, ::-1])
        crop = augment.sun_flare(crop, self.aug.flare_prob, rng)
        crop = augment.color_jitter(crop, self.aug.color_jitter, rng)
        w_hm, h_hm = self.heatmap_size
        heat = np.zeros((NUM_KEYPOINTS, h_hm, w_hm), np.float32)
        weight = np.ones(NUM_KEYPOINTS, np.float32)
        if self.distill_weight is not None:  # the teacher's half: soft, it sees no one (zero maps); hard, no label
            heat, weight = blend_targets(heat, weight, heat, weight * (self.min_score is None), self.distill_weight)
        return pre.normalize(crop[None])[0], heat, weight

    def item(self, set_idx, person_idx, rng=None):
        """(image CHW float32, heatmaps, weights) of one person (or a background crop), drawn with `rng`
        (default: the dataset's own generator)."""
        ds = self.sets[set_idx]
        rng = self.rng if rng is None else rng
        if self.negative_prob and rng.random() < self.negative_prob:
            sample = self.negative(ds, person_idx, rng)
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
        pts_hm = input_to_heatmap(pts, self.input_size, (w_hm, h_hm))
        inside = (pts[:, 0] >= 0) & (pts[:, 0] <= w_in - 1) & (pts[:, 1] >= 0) & (pts[:, 1] <= h_in - 1)
        heat, weight = encode_heatmaps(pts_hm, (vis > 0) & inside, (w_hm, h_hm), self.sigma)
        weight = weight * jw
        if self.distill_weight is not None:
            heat, weight = self.with_teacher(heat, weight, ds.teacher[person_idx], mat, flip)
        return pre.normalize(crop[None])[0], heat, weight

    def with_teacher(self, heat, weight, teacher, mat, flip):
        """Ground-truth (heat, weight) blended with the teacher's labels of the person (None: none, weight 0),
        moved into the crop by its affine `mat` (and mirrored with `flip`, as the labels are)."""
        if teacher is None:
            t_heat, t_weight = np.zeros_like(heat), np.zeros_like(weight)
        else:
            pts, scores = pre.apply_affine(teacher[:, :2], mat), teacher[:, 2]
            if flip:
                pts, scores = pts[list(FLIP_INDEX)], scores[list(FLIP_INDEX)]
            t_heat, t_weight = teacher_targets(input_to_heatmap(pts, self.input_size, self.heatmap_size), scores,
                                               self.heatmap_size, self.sigma, self.min_score)
        return blend_targets(heat, weight, t_heat, t_weight, self.distill_weight)

    def plan(self, n):
        """One epoch's plan: its n (set, person) pairs and the seed of its batches' generators (from self.rng)."""
        idx = self.epoch_indices(n)
        return idx, int(self.rng.integers(1 << 62))

    def batch(self, plan, b, batch_size):
        """Batch `b` of an epoch `plan`, (x, heatmaps, weights) NumPy arrays. Its augmentations are drawn from a
        generator of its own, seeded by (plan's seed, b): batches come out the same whichever worker builds
        them, in whatever order."""
        idx, seed = plan
        rng = np.random.default_rng([seed, b])
        items = [self.item(s, p, rng) for s, p in idx[b * batch_size:(b + 1) * batch_size]]
        return tuple(np.stack(z) for z in zip(*items))

    def batches(self, n, batch_size, prefetch=True, workers=0):
        """Yields the (x, heatmaps, weights) NumPy batches of one epoch of n samples, in order. workers <= 1:
        built in this process, with `prefetch` in one thread ahead of the caller (OpenCV and NumPy release the
        GIL). workers >= 2: built by that many processes of a torch DataLoader (fork: the images are shared,
        not copied), for a GPU that one core cannot feed. Every way gives the same batches (`batch`)."""
        plan = self.plan(n)
        count = len(plan[0]) // batch_size
        if workers > 1:
            yield from _loader_batches(self, plan, count, batch_size, workers)
            return
        if not prefetch:
            yield from (self.batch(plan, b, batch_size) for b in range(count))
            return
        with ThreadPoolExecutor(1, thread_name_prefix="batches") as pool:
            pending = None
            for b in range(count):
                ahead = pool.submit(self.batch, plan, b, batch_size)
                if pending is not None:
                    yield pending.result()
                pending = ahead
            if pending is not None:
                yield pending.result()


class _EpochBatches:
    """Map-style dataset of one epoch's batches, for torch's DataLoader."""

    def __init__(self, data, plan, count, batch_size):
        self.data, self.plan, self.count, self.batch_size = data, plan, count, batch_size

    def __len__(self):
        return self.count

    def __getitem__(self, b):
        return self.data.batch(self.plan, b, self.batch_size)


def _loader_batches(data, plan, count, batch_size, workers):
    """The batches of `plan` from a torch DataLoader of `workers` processes. (No cv2.setNumThreads in the workers:
    in a process forked after OpenCV has used its thread pool that call deadlocks.)"""
    import multiprocessing

    from torch.utils.data import DataLoader

    context = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    loader = DataLoader(_EpochBatches(data, plan, count, batch_size), batch_size=None, shuffle=False,
                        num_workers=workers, multiprocessing_context=context, prefetch_factor=2)
    for batch in loader:
        yield tuple(t.numpy() for t in batch)
