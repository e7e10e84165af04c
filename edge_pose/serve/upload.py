"""An uploaded image out of a POST body: raw JPEG/PNG bytes, or the file part of a multipart/form-data form.

Only JPEG and PNG are decoded, and only after their header's size is checked against `max_pixels`: a few
kilobytes of PNG can declare a 100000 x 100000 image, which OpenCV would try to allocate (30 GB).
"""
from __future__ import annotations

import struct

import numpy as np

RAW_TYPES = ("", "application/octet-stream")
FILE_FIELDS = ("image", "file")
MAX_PIXELS = 50_000_000  # 8K UHD is 33 MP
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic): they carry the image size
SOF_MARKERS = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF))


class UploadError(ValueError):
    """A body that holds no usable image; `status` is the HTTP status to answer with."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


def media_type(content_type):
    """`image/jpeg; charset=x` -> `image/jpeg` (lower case)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def multipart_file(body, content_type):
    """The bytes of the form's image: the part named image or file, else the first part with a filename."""
    from email import policy
    from email.parser import BytesParser

    head = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\nMIME-Version: 1.0\r\n\r\n"
    msg = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not msg.is_multipart():
        raise UploadError("multipart body without parts (boundary missing or wrong)")
    parts = [p for p in msg.iter_parts() if not p.is_multipart()]
    named = [p for p in parts if p.get_param("name", header="content-disposition") in FILE_FIELDS]
    files = [p for p in parts if p.get_filename()]
    chosen = (named or files or [None])[0]
    if chosen is None:
        raise UploadError("multipart form without an image part (name it 'image' or 'file')")
    return chosen.get_payload(decode=True) or b""


def _jpeg_size(data):
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length field
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if marker in SOF_MARKERS and i + 9 <= len(data):
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        if marker == 0xD9 or length < 2:
            return None
        i += 2 + length
    return None


def image_size(data):
    """(format, width, height) from a JPEG or PNG header, without decoding; None for anything else."""
    if data[:8] == PNG_SIGNATURE and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return "png", width, height
    if data[:3] == b"\xff\xd8\xff":
        size = _jpeg_size(data)
        return None if size is None else ("jpeg",) + size
    return None


def decode_image(body, content_type="", max_pixels=MAX_PIXELS):
    """A BGR uint8 image from a POST body; UploadError (400 / 413 / 415) when there is none."""
    import cv2

    kind = media_type(content_type)
    if kind == "multipart/form-data":
        data = multipart_file(body, content_type)
    elif kind in RAW_TYPES or kind.startswith("image/"):
        data = body
    else:
        raise UploadError("unsupported content type %r: send image bytes (image/jpeg, image/png) or "
                          "multipart/form-data" % kind, status=415)
    if not data:
        raise UploadError("empty image")
    header = image_size(data)
    if header is None:
        raise UploadError("the body is not a JPEG or PNG image")
    if header[1] * header[2] > max_pixels:
        raise UploadError("a %d x %d image is over the limit of %d pixels" % (header[1], header[2], max_pixels), 413)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise UploadError("the body is not a decodable JPEG or PNG image")
    return image
