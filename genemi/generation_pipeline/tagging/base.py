"""The tagging protocol, the stage that runs a tagger, and the backend registry."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol, Sequence

from PIL import Image

from genemi.errors import ConfigError, ImageError
from genemi.generation_pipeline.records import ImageInput, TagRecord
from genemi.generation_pipeline.stage import Stage
from genemi.images import load_images


class Tagger(Protocol):
    name: str

    def load(self) -> None: ...

    def offload(self) -> None: ...

    def tag(self, images: Sequence[Image.Image], captions: Sequence[list[str]]) -> list[tuple[str | None, list[str], list[float] | None]]:
        """Per image: (caption, items, item scores or None)."""


def noun_phrases(texts: Sequence[str], max_items: int) -> list[list[str]]:
    """Items from captions: noun phrases without determiners, one per head noun, in order of appearance."""
    from genemi.text.parsing import parse_captions

    out = []
    for parsed in parse_captions(texts):
        items, heads = [], set()
        for chunk in parsed.chunks:
            root = parsed.tokens[chunk.root]
            if root.pos not in ("NOUN", "PROPN") or root.lemma in heads:
                continue
            words = [t.text.lower() for t in parsed.tokens[chunk.start : chunk.end]
                     if t.pos not in ("DET", "PRON", "NUM") and t.text.isalpha()]
            if words:
                heads.add(root.lemma)
                items.append(" ".join(words))
        out.append(items[:max_items])
    return out


class TagStage(Stage):
    name, output, record_type = "tag", "tags.jsonl", TagRecord

    def __init__(self, tagger: Tagger, image_root: Path):
        super().__init__()
        self.tagger, self.image_root = tagger, Path(image_root)

    def load(self) -> None:
        self.tagger.load()

    def offload(self) -> None:
        self.tagger.offload()

    def prepare(self, batch: Sequence[ImageInput]):
        return load_images(self.image_root, [rec.image for rec in batch])

    def finish(self, raw: list) -> list[TagRecord]:
        """Records from the tagger's output (in the writer thread)."""
        out = []
        for entry in raw:
            if isinstance(entry, TagRecord):
                out.append(entry)
                continue
            rec, (width, height), (caption, tags, scores) = entry
            out.append(TagRecord(
                id=rec.id, image=rec.image, width=width, height=height, caption=caption,
                original_captions=rec.captions, tags=tags, tag_scores=scores, backend=self.tagger.name,
                status="ok" if tags else "failed", error=None if tags else "no items found",
            ))
        return out

    def process(self, batch: Sequence[ImageInput], prepared=None) -> list:
        prepared = prepared if prepared is not None else self.prepare(batch)
        loaded, out = [], {}
        for rec, img in zip(batch, prepared):
            if isinstance(img, ImageError):
                out[rec.id] = TagRecord(id=rec.id, image=rec.image, original_captions=rec.captions,
                                        backend=self.tagger.name, status="failed", error=str(img))
            else:
                loaded.append((rec, img))
        if loaded:
            with self.timed():
                results = self.tagger.tag([img for _, img in loaded], [rec.captions for rec, _ in loaded])
            for (rec, img), result in zip(loaded, results):
                out[rec.id] = (rec, img.size, result)
        return [out[rec.id] for rec in batch]


def _captions(opts):
    from genemi.generation_pipeline.tagging.captions import CaptionTagger

    return CaptionTagger(opts.get("max_items", 10))


def _blip(opts):
    from genemi.generation_pipeline.tagging.blip import BlipTagger

    if not opts.get("blip_model"):
        raise ConfigError("tagger 'blip' needs --blip-model (a local BLIP captioning folder)")
    return BlipTagger(opts["blip_model"], opts.get("device", "cpu"), opts.get("dtype"), opts.get("max_items", 10))


def _tag2text(opts):
    from genemi.generation_pipeline.tagging.tag2text import Tag2TextTagger

    return Tag2TextTagger(opts.get("tag2text_checkpoint"), opts.get("tag2text_threshold"))


#: name -> factory(options) -> Tagger
TAGGERS: dict[str, Callable[[dict], Tagger]] = {"captions": _captions, "blip": _blip, "tag2text": _tag2text}


def build_tagger(name: str, **options) -> Tagger:
    if name not in TAGGERS:
        raise ConfigError(f"unknown tagger {name!r}; choose from {', '.join(TAGGERS)}")
    return TAGGERS[name](options)
