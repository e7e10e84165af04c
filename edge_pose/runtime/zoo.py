"""Shipped models: names (`resnet18`, `mobilenetv3`) -> files in `engines/` through `engines/manifest.json`.

Manifest format: {"models": [{"name": "resnet18", "file": "resnet18.onnx", "sha256": "...", ...}]}.
The engines folder is the repository's `engines/` next to the package; `EDGE_POSE_ENGINES` overrides it.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import edge_pose

DEFAULT_NAMES = ("resnet18", "mobilenetv3")
MODEL_SUFFIXES = (".onnx", ".pt", ".pth", ".engine", ".plan", ".trt")


class ModelNotFound(FileNotFoundError):
    """A model name or path that does not lead to a model file."""


def engines_dir():
    env = os.environ.get("EDGE_POSE_ENGINES")
    if env:
        return Path(env).expanduser()
    return Path(edge_pose.__file__).resolve().parent.parent / "engines"


def load_manifest(folder=None):
    """The manifest as a dict ({"models": []} when there is none)."""
    path = Path(folder or engines_dir()) / "manifest.json"
    if not path.is_file():
        return {"models": []}
    with open(path, encoding="utf-8") as f:
        manifest = json.load(f)
    manifest.setdefault("models", [])
    return manifest


def shipped_names(folder=None):
    names = [m.get("name") for m in load_manifest(folder)["models"] if m.get("name")]
    return tuple(names) if names else DEFAULT_NAMES


def sha256(path, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def resolve(name_or_path, folder=None, verify=False):
    """A shipped model name or a path -> Path of an existing model file.

    Existing paths pass through unchanged. Raises ModelNotFound (a FileNotFoundError) naming the shipped
    models for unknown names, missing paths and shipped models whose file is absent; with verify=True a
    shipped file whose sha256 differs from the manifest raises ValueError.
    """
    path = Path(str(name_or_path)).expanduser()
    if path.is_file():
        return path
    folder = Path(folder or engines_dir())
    names = shipped_names(folder)
    hint = "shipped models: %s (or pass a path to a .onnx / .pt / .engine file)" % ", ".join(names)
    text = str(name_or_path)
    if path.suffix.lower() in MODEL_SUFFIXES or "/" in text or os.sep in text:
        raise ModelNotFound("no model file at %s; %s" % (text, hint))
    entries = {m.get("name"): m for m in load_manifest(folder)["models"]}
    if text not in entries:
        if text in names:  # a default name, but no manifest lists it
            raise ModelNotFound("shipped model %r is not installed: no entry in %s; %s"
                                % (text, folder / "manifest.json", hint))
        raise ModelNotFound("unknown model %r; %s" % (text, hint))
    entry = entries[text]
    file = folder / entry.get("file", "")
    if not entry.get("file") or not file.is_file():
        raise ModelNotFound("shipped model %r: file %s listed in the manifest is missing; %s" % (text, file, hint))
    if verify and entry.get("sha256") and sha256(file) != entry["sha256"]:
        raise ValueError("shipped model %r: sha256 of %s does not match the manifest" % (text, file))
    return file
