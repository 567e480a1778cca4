"""What both decoders share: the decode error and the target size of a resize mode.

Input: an image's size and a ResizeSpec (transforms/imaging.py). Output: the scaled size for
img2dataset's resize modes; ``DecodeError`` carries the drop reason (``image.undecodable``,
``image.too_many_pixels``, ``image.svg_refused``) of an image that cannot be used. Its own module
so that transforms/svg.py and transforms/imaging.py both use it without importing each other.
"""

from __future__ import annotations

from pipeline.records import DropReason


class DecodeError(Exception):
    def __init__(self, reason: DropReason, detail: str):
        super().__init__(reason, detail)  # both in args: it crosses process boundaries (pickle)
        self.reason, self.detail = reason, detail


def target_size(width: int, height: int, spec) -> tuple[int, int]:
    """Size before cropping/padding: the scaled image for the mode (may equal input)."""
    size = spec.image_size
    if spec.mode == "no":
        return width, height
    if spec.mode in ("keep_ratio", "center_crop"):
        ref = min(width, height)
    else:  # keep_ratio_largest, border
        ref = max(width, height)
    if spec.resize_only_if_bigger and ref <= size:
        return width, height
    scale = size / ref
    return max(1, round(width * scale)), max(1, round(height * scale))



__all__ = ["DecodeError", "target_size"]
