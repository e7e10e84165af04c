"""Batch annotation of recorded videos and image folders: `edge-pose annotate INPUT... --out DIR`.

For each video DIR/<stem>.mp4 (annotated, H.264), DIR/<stem>.jsonl (one line per frame) and
DIR/<stem>.coco.json (COCO keypoint results, image_id = frame index). An image folder gives DIR/<name>/
(annotated images) with DIR/<name>.jsonl and DIR/<name>.coco.json; a single image DIR/<stem><ext> with the
same two files.

Outputs are written under temporary names and renamed when complete (see `sinks`), so an interrupted run
leaves no truncated file under a final name; a rerun skips inputs whose outputs all exist (`--overwrite`
redoes them). Bad inputs print one line on stderr each and make the exit status non-zero; the other inputs
are still processed. Exit status: 0 all done or skipped, 1 some input failed, 2 nothing could run (model,
output folder).
"""
from __future__ import annotations

import glob
import os
import signal
import sys
import time
from pathlib import Path

from edge_pose.sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES

PROG = "edge-pose annotate"
GLOB_CHARS = "*?["


def error(message):
    """One line on stderr naming the problem."""
    print("%s: error: %s" % (PROG, " ".join(str(message).split())), file=sys.stderr, flush=True)


def add_arguments(p):
    from edge_pose.persons import MODES
    from edge_pose.runtime import BACKENDS

    p.add_argument("inputs", nargs="+", metavar="INPUT", help="video files, globs (quoted or not), image folders")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if needed)")
    p.add_argument("--model", default="mobilenetv3", metavar="M",
                   help="shipped model name (mobilenetv3, resnet18) or a .onnx / .pt path (default mobilenetv3)")
    p.add_argument("--backend", default="auto", choices=BACKENDS,
                   help="inference backend (default auto: by the model file's type)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--threads", type=int, default=None, help="CPU inference threads (default: all cores)")
    p.add_argument("--persons", default="keypoints", choices=MODES,
                   help="where person boxes come from: keypoints = each person's box carried from its keypoints "
                        "in the previous frame, found by scanning windows over the frame while nobody is "
                        "tracked and every --detect-every frames (default); detector = the same with a person "
                        "detector (--detector) finding people; full-frame = one person, the whole frame; "
                        "windows = scan every frame (slow)")
    p.add_argument("--detector", default="hog", metavar="D",
                   help="for --persons detector: hog (OpenCV's people detector) or a YOLO-layout .onnx (default hog)")
    p.add_argument("--detect-every", type=int, default=15, metavar="N",
                   help="re-run the acquisition (window scan or detector) every N frames (default 15)")
    p.add_argument("--smoothing", default="kalman", choices=("kalman", "one_euro", "none"),
                   help="keypoint smoothing per track, written as \"smoothed\" next to the raw keypoints and drawn "
                        "(default kalman)")
    p.add_argument("--no-video", action="store_true", help="write only the JSONL and COCO files")
    p.add_argument("--draw-threshold", type=float, default=0.3, metavar="S",
                   help="least keypoint score drawn (default 0.3)")
    p.add_argument("--decoder", default="dark", choices=("dark", "argmax"), help="heatmap decoder")
    p.add_argument("--overwrite", action="store_true", help="redo inputs whose outputs already exist")
    p.add_argument("--max-frames", type=int, default=None, metavar="N", help="stop each input after N frames")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


# ------------------------------------------------------------------------------------------------ inputs

def expand_inputs(inputs):
    """INPUT arguments -> (existing paths in order, without repeats; error lines).

    An existing path is taken as is (a folder is an image folder). Otherwise a pattern with * ? [ is
    expanded (sorted), keeping folders and files with a video or image suffix.
    """
    paths, errors, seen = [], [], set()

    def add(path):
        key = os.path.realpath(str(path))
        if key not in seen:
            seen.add(key)
            paths.append(Path(path))

    for text in inputs:
        path = Path(os.path.expanduser(text))
        if path.exists():
            add(path)
            continue
        if any(c in text for c in GLOB_CHARS):
            matches = [Path(m) for m in sorted(glob.glob(os.path.expanduser(text)))]
            matches = [m for m in matches if m.is_dir() or m.suffix.lower() in VIDEO_SUFFIXES + IMAGE_SUFFIXES]
            if not matches:
                errors.append("%s: no video, image or folder matches this pattern" % text)
            for m in matches:
                add(m)
            continue
        errors.append("%s: no such file or folder" % text)
    return paths, errors


def kind_of(path):
    path = Path(path)
    if path.is_dir():
        return "images"
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return "image"
    return "video"


def plan_outputs(path, out_dir, video=True):
    """Output paths of one input: {"video": Path or None, "jsonl": Path, "coco": Path}."""
    path, out_dir = Path(path), Path(out_dir)
    kind = kind_of(path)
    stem = (path.resolve().name or "images") if kind == "images" else path.stem
    if kind == "images":
        annotated = out_dir / stem
    elif kind == "image":
        annotated = out_dir / path.name
    else:
        annotated = out_dir / (stem + ".mp4")
    return {"video": annotated if video else None, "jsonl": out_dir / (stem + ".jsonl"),
            "coco": out_dir / (stem + ".coco.json")}


def is_done(outputs):
    return all(p.exists() for p in outputs.values() if p is not None)


def check_out_dir(out_dir):
    """Create the output folder and prove it is writable; returns an error line or None."""
    out = Path(out_dir)
    try:
        if out.exists() and not out.is_dir():
            return "output folder %s: exists and is not a folder" % out
        out.mkdir(parents=True, exist_ok=True)
        probe = out / (".edge-pose-write-test-%d" % os.getpid())
        with open(probe, "w") as f:
            f.write("ok")
        probe.unlink()
    except OSError as exc:
        return "output folder %s: cannot be written (%s)" % (out, exc.strerror or exc)
    return None


# ------------------------------------------------------------------------------------------------ one input

class Result:
    """A summary row."""

    def __init__(self, name, status="done", frames=0, persons=0, seconds=0.0, message=""):
        self.name, self.status, self.frames, self.persons = name, status, frames, persons
        self.seconds, self.message = seconds, message

    @property
    def fps(self):
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def persons_per_frame(self):
        return self.persons / float(self.frames) if self.frames else 0.0

    def as_dict(self):
        return {"input": self.name, "status": self.status, "frames": self.frames,
                "persons_per_frame": round(self.persons_per_frame, 3), "fps": round(self.fps, 2),
                "seconds": round(self.seconds, 3), "message": self.message}


def _writers(src, outputs):
    from edge_pose import sinks

    made = []
    try:
        if outputs.get("video") is not None:
            if src.kind == "video":
                made.append(("video", sinks.ThreadedWriter(sinks.VideoWriter(outputs["video"], src.fps), 4)))
            elif getattr(src, "is_folder", False):
                made.append(("images", sinks.ImageFolderWriter(outputs["video"])))
            else:
                made.append(("image", _SingleImageWriter(outputs["video"])))
        made.append(("coco", sinks.CocoResultsWriter(outputs["coco"])))
        made.append(("jsonl", sinks.JsonlWriter(outputs["jsonl"])))
    except BaseException:
        for _, w in made:
            w.abort()
        raise
    return made


class _SingleImageWriter:
    """One annotated image, written atomically."""

    def __init__(self, path):
        from edge_pose.sinks import Sink

        self._sink = Sink(path)
        self.path, self.tmp = self._sink.path, self._sink.tmp

    def write(self, image, name=None):
        import cv2

        ok, data = cv2.imencode(self.path.suffix or ".png", image)
        if not ok:
            raise IOError("cannot encode %s" % self.path)
        self.tmp.write_bytes(data.tobytes())

    def close(self):
        self._sink.close()

    def abort(self):
        self._sink.abort()


class _Outputs:
    """The writers of one input as one pipeline sink: every frame record to the JSONL and COCO results,
    the annotated frame to the video / images; `close` commits them all (video first, the JSONL last),
    `abort` takes every one back, including those already committed (all or nothing)."""

    def __init__(self, writers, result, bar=None):
        self.writers = writers
        self.by_name = dict(writers)
        self.result = result
        self.bar = bar
        self.wants_image = any(k in self.by_name for k in ("video", "images", "image"))
        self.committed = []

    def write(self, record, image):
        self.by_name["jsonl"].write(record)
        self.by_name["coco"].write_frame(record["frame"], record["persons"])
        if "video" in self.by_name:
            self.by_name["video"].write(image)
        elif "images" in self.by_name or "image" in self.by_name:
            (self.by_name.get("images") or self.by_name["image"]).write(image, record.get("file"))
        self.result.frames += 1
        self.result.persons += len(record["persons"])
        if self.bar is not None:
            self.bar.update(1)
            if self.result.frames % 10 == 0:
                self.bar.set_postfix_str("%.1f persons/frame" % self.result.persons_per_frame, refresh=False)

    def close(self):
        try:
            for _, w in self.writers:
                w.close()
                self.committed.append(w)
        except BaseException:
            self.abort()
            raise

    def abort(self):
        from edge_pose import sinks

        for _, w in self.writers:
            w.abort()
        for w in self.committed:
            sinks.remove_output(w.path)


def annotate_source(src, estimator, persons, outputs, draw_threshold=0.3, progress=True, max_frames=None,
                    tracker=None, smoother=None):
    """Run one opened Source through the pipeline (lossless: every frame, in order) into the outputs;
    returns a Result. All writers commit together at the end; any exception (or interrupt) aborts them all."""
    from edge_pose import sinks
    from edge_pose.pipeline import Pipeline

    for p in outputs.values():
        if p is not None:
            sinks.remove_stale_partials(p)
    result = Result(str(src.uri))
    total = src.frame_count
    if max_frames is not None:
        total = min(total, max_frames) if total else max_frames
    persons.reset()
    bar = _progress(src.name, total, progress)
    start = time.perf_counter()
    try:
        out = _Outputs(_writers(src, outputs), result, bar)
        pipeline = Pipeline(src, estimator, persons, tracker=tracker, smoother=smoother, sinks=[out],
                            policy="queue", draw_threshold=draw_threshold, overlay=False, max_frames=max_frames)
        pipeline.run()
        if result.frames == 0:
            out.abort()
            raise IOError("%s: no frames could be read" % src.uri)
        if src.frame_count and max_frames is None and result.frames != src.frame_count:
            result.message = "read %d of the %d frames the file lists" % (result.frames, src.frame_count)
    finally:
        result.seconds = time.perf_counter() - start
        if bar is not None:
            bar.close()
    return result


def _progress(name, total, enabled):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=name, unit="frame", dynamic_ncols=True, mininterval=0.5, leave=True)


# ------------------------------------------------------------------------------------------------ summary

def format_summary(results):
    rows = [("input", "frames", "persons/frame", "FPS", "status")]
    for r in results:
        status = r.status if not r.message else "%s: %s" % (r.status, r.message)
        rows.append((Path(r.name).name or r.name, str(r.frames) if r.frames else "-",
                     "%.2f" % r.persons_per_frame if r.frames else "-",
                     "%.1f" % r.fps if r.frames and r.status == "done" else "-", status))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for i, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [row[j].rjust(widths[j]) for j in (1, 2, 3)] + [row[4]]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths) + "  ------")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ main

def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def main(args):
    from edge_pose.sources import quiet_ffmpeg

    quiet_ffmpeg()
    try:  # SIGTERM cleans up like Ctrl-C: partial files are removed
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not the main thread
        previous = None
    try:
        return _main(args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(args):
    from edge_pose.sources import SourceError, open_source

    problem = check_out_dir(args.out)
    if problem:
        error(problem)
        return 2
    try:  # a typo in --model is reported even when every input is already done
        from edge_pose.runtime import resolve

        resolve(args.model)
    except FileNotFoundError as exc:
        error("model %s: %s" % (args.model, _first_line(exc)))
        return 2
    paths, input_errors = expand_inputs(args.inputs)
    for line in input_errors:
        error(line)
    results = [Result(line.split(": ", 1)[0], "failed", message=line.split(": ", 1)[-1]) for line in input_errors]

    # plan every input first: clashes and inputs that are already done need no model
    planned, claimed = [], {}
    for path in paths:
        outputs = plan_outputs(path, args.out, video=not args.no_video)
        finals = [p for p in outputs.values() if p is not None]
        clash = next((claimed[os.path.realpath(str(p))] for p in finals if os.path.realpath(str(p)) in claimed), None)
        if clash is not None:
            msg = "output names clash with %s (same name); annotate it in a separate run" % clash
            error("%s: %s" % (path, msg))
            results.append(Result(str(path), "failed", message=msg))
            continue
        if any(os.path.realpath(str(p)) == os.path.realpath(str(path)) for p in finals):
            msg = "the output would overwrite the input; choose another --out"
            error("%s: %s" % (path, msg))
            results.append(Result(str(path), "failed", message=msg))
            continue
        for p in finals:
            claimed[os.path.realpath(str(p))] = str(path)
        if is_done(outputs) and not args.overwrite:
            results.append(Result(str(path), "skipped", message="outputs exist (--overwrite to redo)"))
            continue
        planned.append((path, outputs))

    estimator = None
    if planned:
        estimator = _open_model(args)
        if estimator is None:
            return 2
        print("%s: model %s" % (PROG, estimator.describe()), file=sys.stderr, flush=True)
    try:
        for path, outputs in planned:
            try:
                with open_source(path) as src:
                    persons, tracker, smoother = make_stages(args)
                    result = annotate_source(src, estimator, persons, outputs, args.draw_threshold,
                                             progress=not args.quiet, max_frames=args.max_frames,
                                             tracker=tracker, smoother=smoother)
                results.append(result)
            except SourceError as exc:
                error(exc)
                results.append(Result(str(path), "failed", message=_short(exc, path)))
            except (OSError, ValueError, RuntimeError) as exc:
                error("%s: %s" % (path, _short(exc, path)))
                results.append(Result(str(path), "failed", message=_short(exc, path)))
    finally:
        if estimator is not None:
            estimator.close()
    order = dict((os.path.realpath(str(p)), i) for i, p in enumerate(paths))
    results.sort(key=lambda r: order.get(os.path.realpath(r.name), -1))
    print(format_summary(results))
    failed = [r for r in results if r.status == "failed"]
    return 1 if failed else 0


def make_stages(args):
    """The person source, tracker and smoother of one input (fresh state per input)."""
    from edge_pose.persons import make_person_source
    from edge_pose.smooth import make_smoother
    from edge_pose.track import Tracker, TrackerParams

    if args.persons == "detector":
        persons = make_person_source("detector", detector=args.detector, every=args.detect_every)
    elif args.persons == "keypoints":
        persons = make_person_source("keypoints", reacquire_every=args.detect_every)
    else:
        persons = make_person_source(args.persons)
    smoother = None if args.smoothing == "none" else make_smoother(args.smoothing)
    return persons, Tracker(TrackerParams()), smoother


def _short(exc, path=None):
    text = " ".join(str(exc).split()) or type(exc).__name__
    prefix = "%s: " % path
    return text[len(prefix):] if path is not None and text.startswith(prefix) else text


def _open_model(args):
    from edge_pose.estimator import PoseEstimator

    try:
        return PoseEstimator(args.model, backend=args.backend, device=args.device, threads=args.threads,
                             decoder=args.decoder)
    except NotImplementedError as exc:
        error("model %s: %s" % (args.model, exc))
    except Exception as exc:  # ModelNotFound, wrong input shape, unreadable file: one line each
        text = _first_line(exc)
        for prefix in (str(args.model), os.path.abspath(str(args.model))):
            if text.startswith(prefix + " "):
                text = text[len(prefix) + 1:]
        error("model %s: %s" % (args.model, text))
    return None


def _first_line(exc):
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
