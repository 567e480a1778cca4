"""wit blocklist-hash: the sha256 and pHash lines a curator pastes into blocklist files."""

import hashlib
import io

from PIL import Image

from filters.blocklist_lists import load_blocklists
from pipeline.cli import main
from pipeline.sample.scenes import SceneSpec, encode_jpeg, render_scene
from pipeline.specs import blocklist_spec
from tests.default_specs import spec_with
from transforms.hashing import phash_image, to_hex


def test_prints_sha256_and_phash_and_the_lines_load_as_lists(tmp_path, capsys):
    data = encode_jpeg(render_scene(SceneSpec("circle", "red", "blue"), (96, 96)))
    image = tmp_path / "takedown.jpg"
    image.write_bytes(data)
    (tmp_path / "notes.txt").write_text("not an image")
    code = main(["blocklist-hash", str(image), str(tmp_path / "notes.txt"), str(tmp_path / "missing.jpg")])
    captured = capsys.readouterr()
    assert code == 1  # two of three failed, each said so
    assert captured.err.count("wit: error:") == 2
    sha, phash, path = captured.out.split()
    assert sha == hashlib.sha256(data).hexdigest() and path == str(image)
    assert phash == to_hex(phash_image(Image.open(io.BytesIO(data))))
    (tmp_path / "sha.txt").write_text(captured.out)  # the whole line: the path after whitespace is ignored
    (tmp_path / "phash.txt").write_text(phash + "\n")
    lists = load_blocklists(spec_with(blocklist_spec, sha256=[str(tmp_path / "sha.txt")], phash=[str(tmp_path / "phash.txt")]))
    assert lists.sha256 == {sha} and lists.phashes == (int(phash, 16),)
