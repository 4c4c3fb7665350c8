"""WebDataset shards of a known layout for the data and distributed tests."""

import io
import json
import tarfile
from pathlib import Path

from PIL import Image


def png(colour=(200, 30, 30), size=8) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, format="PNG")
    return buf.getvalue()


def caption(shard: int, index: int) -> str:
    return f"a red square number {index} of shard {shard}"


def write_shards(folder: Path, sizes, corrupt=(), image: bytes | None = None, suffix: str = "",
                 encoding: str = "utf-8") -> str:
    """Shards ``shard-000.tar ...`` holding ``sizes[s]`` samples each (png + txt + json with two negatives);
    ``(shard, index)`` pairs in ``corrupt`` get bytes that are no image; captions end with ``suffix`` and are
    written in ``encoding``. Returns the brace pattern."""
    folder.mkdir(parents=True, exist_ok=True)
    image = image or png()
    for s, n in enumerate(sizes):
        with tarfile.open(folder / f"shard-{s:03d}.tar", "w") as tar:
            for j in range(n):
                negs = [{"type": "colour", "text": f"a blue square {j}", "valid": True}, f"a red circle {j}"]
                files = {"png": b"not a png" if (s, j) in corrupt else image,
                         "txt": (caption(s, j) + suffix).encode(encoding),
                         "json": json.dumps({"negatives": negs}).encode()}
                for ext, payload in files.items():
                    info = tarfile.TarInfo(f"{s:03d}{j:05d}.{ext}")
                    info.size = len(payload)
                    tar.addfile(info, io.BytesIO(payload))
    return str(folder / f"shard-{{000..{len(sizes) - 1:03d}}}.tar")
