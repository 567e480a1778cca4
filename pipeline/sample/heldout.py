"""Held-out zero-shot images for the sample web's vocabulary (eval tasks of `wit ab` and the benches).

Input: a directory, images per class, a seed the sample web does not use. Output: three
ImageFolder trees over the same images, labelled three ways: ``colour_shapes/<colour>_<shape>/``,
``shapes/<shape>/`` and ``colours/<colour>/``, each image resized as the pipeline resizes for the
bundled scorer. They match configs/eval/sample_colour_shapes.yaml, sample_shapes.yaml and
sample_colours.yaml. Nothing is dropped.
"""

from __future__ import annotations

import os
import random

from pipeline.config import CONFIG_DIR

HELDOUT_SEED = 777_001  # the sample web uses 0, the bundled scorer 1009
# (task YAML under configs/eval/, folder under the held-out root)
TASKS = (("sample_colour_shapes", "colour_shapes"), ("sample_shapes", "shapes"),
         ("sample_colours", "colours"))


def write_heldout(root: str, per_class: int = 10, seed: int = HELDOUT_SEED) -> None:
    """Render ``per_class`` scenes for every colour and shape into the three trees under ``root``."""
    from pipeline.sample.scenes import COLOURS, COUNTS, SHAPES, SceneSpec, encode_jpeg, render_scene
    from pipeline.sample.scorer import SCORER_RESIZE
    from transforms.resize import resize_image

    rng = random.Random(seed)
    for colour in COLOURS:
        for shape in SHAPES:
            for i in range(per_class):
                background = rng.choice([c for c in COLOURS if c != colour])
                count = rng.choices(COUNTS, weights=(0.6, 0.25, 0.15))[0]
                size = (rng.randint(160, 320), rng.randint(160, 320))
                image = render_scene(SceneSpec(shape, colour, background, count), size,
                                     seed=rng.randrange(2**31))
                data = resize_image(encode_jpeg(image), SCORER_RESIZE).data
                for folder_name, label in (("colour_shapes", f"{colour}_{shape}"), ("shapes", shape),
                                           ("colours", colour)):
                    folder = os.path.join(root, folder_name, label)
                    os.makedirs(folder, exist_ok=True)
                    with open(os.path.join(folder, f"{colour}_{shape}_{i:02d}.jpg"), "wb") as fh:
                        fh.write(data)


def heldout_tasks(root: str) -> list[tuple[str, str]]:
    """``(task YAML, image folder)`` of the three sample-web tasks over a tree ``write_heldout`` wrote."""
    return [(str(CONFIG_DIR / "eval" / f"{name}.yaml"), os.path.join(root, folder))
            for name, folder in TASKS]
