"""``blip`` scorer: BLIP image-text matching (ITM) of each variation image with each of its captions.

The model is a transformers ``BlipForImageTextRetrieval`` folder (``Salesforce/blip-itm-large-coco`` is
the original's LAVIS ``blip_image_text_matching`` / ``large`` model converted). The score kept is the ITM
head's raw logit of class 1 ("match"), not softmaxed, as the original's ``itm_score``; its softmax
probability is kept beside it (``itm_prob``).

Fidelity to LAVIS, which the original ran:

* captions are normalised as LAVIS' ``blip_caption`` text processor does (lower case, ``.!"()*#:;~``
  removed, whitespace collapsed, at most 50 words) and tokenised to at most 35 tokens;
* the first token is ``[ENC]`` when the tokenizer has it, as BLIP/LAVIS put it before image-grounded text
  (transformers' own forward keeps ``[CLS]``: huggingface/transformers#25629); a tokenizer without
  ``[ENC]`` keeps ``[CLS]``.

Batching: the vision encoder runs once per image (not once per caption); the image-grounded text encoder
then runs over (image, caption) pairs in chunks of ``--itm-batch-size``, each pair indexing its image's
embeddings, with pairs sorted by length so a chunk carries little padding. The result equals
``model(input_ids, pixel_values, use_itm_head=True)`` per pair.
"""

from __future__ import annotations

import re
from typing import Sequence

import torch

from genemi.errors import CheckpointError, ConfigError, DataError
from genemi.generation_pipeline.stage import release_to_cpu

#: LAVIS' BLIP ITM text limits: ``max_txt_len`` tokens, ``max_words`` words of the normalised caption
MAX_TEXT_TOKENS = 35
MAX_CAPTION_WORDS = 50
ENC_TOKEN = "[ENC]"
#: the ITM head's class order: 0 = no match, 1 = match
MATCH = 1

_PUNCTUATION = re.compile(r"[.!\"()*#:;~]")
_SPACES = re.compile(r"\s+")


def normalise_caption(text: str, max_words: int = MAX_CAPTION_WORDS) -> str:
    """A caption as LAVIS' ``blip_caption`` processor feeds it to BLIP: lower case, ``.!"()*#:;~`` turned into
    spaces, runs of whitespace collapsed, at most ``max_words`` words."""
    words = _SPACES.sub(" ", _PUNCTUATION.sub(" ", text.lower())).strip().split(" ")
    return " ".join(words[:max_words])


class BlipMatcher:
    """``match(images, captions)``: per image, the raw ITM "match" logit and its probability per caption."""

    name = "blip"

    def __init__(self, config, context, model=None, processor=None):
        self.path, self.batch_size = config.blip_model, config.itm_batch_size
        self.device, self.dtype = context.device, context.dtype
        self.model, self.processor = model, processor

    # --- lifecycle ---------------------------------------------------------------------------------------

    def check(self) -> None:
        """The folder holds a BLIP image-text matching model whose config, weights (read as structure, the ITM
        head included) and processor are all there (:func:`genemi.models.hf.check_pretrained`)."""
        from genemi.models.hf import check_pretrained

        if self.batch_size < 1:
            raise ConfigError(f"--itm-batch-size {self.batch_size}: must be at least 1")
        if not self.path:
            raise ConfigError("--scorer blip needs --blip-model DIR: a local BLIP image-text matching folder "
                              "(e.g. a download of Salesforce/blip-itm-large-coco)")
        try:
            check_pretrained(self.path, "--blip-model", "blip", processor=True,
                             architectures=("BlipForImageTextRetrieval",), prefixes=("vision_model.", "itm_head."),
                             kind="an image-text matching model (BlipForImageTextRetrieval, e.g. blip-itm-large-coco)")
        except CheckpointError as exc:
            raise ConfigError(str(exc)) from None

    def load(self) -> None:
        if self.model is None:
            self.model, self.processor = load_blip_itm(self.path)
        self.model.to(self.device, dtype=self.dtype or torch.float32)

    def offload(self) -> None:
        if self.model is not None:
            release_to_cpu(self.model)

    # --- inputs ------------------------------------------------------------------------------------------

    @property
    def tokenizer(self):
        return getattr(self.processor, "tokenizer", self.processor)

    def preprocess(self, images: Sequence) -> torch.Tensor:
        """Images (PIL) as the model's ``pixel_values`` on the CPU (thread-safe: the stage calls it while the
        previous batch computes)."""
        if not len(images):
            return torch.empty(0)
        return self.processor.image_processor(images=list(images), return_tensors="pt")["pixel_values"]

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Token ids and attention mask (padded on the right) of normalised captions (``[ENC]`` first when the
        tokenizer has it)."""
        tok = self.tokenizer
        limit = min(MAX_TEXT_TOKENS, self.model.config.text_config.max_position_embeddings)
        enc = tok([normalise_caption(t) for t in texts], padding="longest", padding_side="right", truncation=True,
                  max_length=limit, return_tensors="pt")
        enc_id = self._enc_token_id()
        if enc_id is not None:
            enc["input_ids"][:, 0] = enc_id
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def _enc_token_id(self) -> int | None:
        if not hasattr(self, "_enc_id"):
            tok = self.tokenizer
            token_id = tok.convert_tokens_to_ids(ENC_TOKEN) if ENC_TOKEN in tok.get_vocab() else None
            ok = token_id is not None and token_id < self.model.config.text_config.vocab_size
            self._enc_id = token_id if ok else None
        return self._enc_id

    # --- scoring -----------------------------------------------------------------------------------------

    @torch.no_grad()
    def image_embeddings(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The vision encoder's last hidden states ``[N, patches + 1, D]``, in chunks of the ITM batch size."""
        dtype = self.dtype or torch.float32
        chunks = [self.model.vision_model(pixel_values=pixel_values[i : i + self.batch_size].to(self.device, dtype))
                  .last_hidden_state for i in range(0, len(pixel_values), self.batch_size)]
        return torch.cat(chunks)

    @torch.no_grad()
    def pair_logits(self, image_embeds: torch.Tensor, image_index: torch.Tensor, input_ids: torch.Tensor,
                    attention_mask: torch.Tensor) -> torch.Tensor:
        """ITM head logits ``[P, 2]`` (float32) of pairs: text ``p`` against image ``image_index[p]``."""
        embeds = image_embeds[image_index.to(image_embeds.device)]
        out = self.model.text_encoder(
            input_ids=input_ids.to(self.device), attention_mask=attention_mask.to(self.device),
            encoder_hidden_states=embeds,
            encoder_attention_mask=torch.ones(embeds.shape[:-1], dtype=torch.long, device=embeds.device),
        )
        return self.model.itm_head(out.last_hidden_state[:, 0, :]).float()

    def match(self, images, captions: Sequence[Sequence[str]]) -> list[tuple[list[float], list[float]]]:
        """Per image: ``(raw "match" logits, match probabilities)``, one of each per caption, in caption order.

        ``images``: PIL images or their :meth:`preprocess`-ed ``pixel_values``; ``captions[i]`` belongs to
        ``images[i]``. An image without captions gets ``([], [])`` and is not encoded."""
        if len(images) != len(captions):
            raise DataError(f"{len(images)} images but {len(captions)} caption lists")
        out: list[tuple[list[float], list[float]]] = [([], []) for _ in captions]
        used = [i for i, caps in enumerate(captions) if caps]
        if not used:
            return out
        pixels = images if isinstance(images, torch.Tensor) else self.preprocess([images[i] for i in used])
        if isinstance(images, torch.Tensor):
            pixels = pixels[used]
        slot = {i: k for k, i in enumerate(used)}
        pairs = [(slot[i], j) for i in used for j in range(len(captions[i]))]
        enc = self.tokenize([captions[used[k]][j] for k, j in pairs])
        lengths = enc["attention_mask"].sum(dim=1)
        order = sorted(range(len(pairs)), key=lambda p: int(lengths[p]))  # similar lengths share a chunk
        logits = torch.empty(len(pairs), 2)
        image_embeds = self.image_embeddings(pixels)
        for start in range(0, len(order), self.batch_size):
            chunk = torch.tensor(order[start : start + self.batch_size])
            width = int(lengths[chunk].max())  # the chunk's own padding only
            index = torch.tensor([pairs[p][0] for p in chunk.tolist()])
            logits[chunk] = self.pair_logits(image_embeds, index, enc["input_ids"][chunk, :width],
                                             enc["attention_mask"][chunk, :width]).cpu()
        probs = logits.softmax(dim=-1)[:, MATCH].tolist()
        raw = logits[:, MATCH].tolist()
        for p, (k, _) in enumerate(pairs):
            out[used[k]][0].append(raw[p])
            out[used[k]][1].append(probs[p])
        return out


def load_blip_itm(path):
    """``(BlipForImageTextRetrieval in eval mode on the CPU, processor)`` from a local folder; a folder whose
    weights lack the ITM head (e.g. a captioning BLIP) is refused instead of scoring with random weights."""
    from transformers import AutoProcessor, BlipForImageTextRetrieval

    from genemi.models.hf import first_line, load_errors, quiet_loading, require_local_dir

    folder = require_local_dir(path, "BLIP image-text matching model (--blip-model)")
    try:
        with quiet_loading():
            processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
            model, info = BlipForImageTextRetrieval.from_pretrained(folder, local_files_only=True,
                                                                    output_loading_info=True)
    except load_errors() as exc:
        raise CheckpointError(f"--blip-model {folder}: cannot load it: {first_line(exc)}") from exc
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        raise CheckpointError(f"--blip-model {folder}: weights missing for {len(missing)} tensors "
                              f"({', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''}); "
                              "expected a BlipForImageTextRetrieval checkpoint such as blip-itm-large-coco")
    if not hasattr(processor, "image_processor") or not hasattr(processor, "tokenizer"):
        raise CheckpointError(f"--blip-model {folder}: no BLIP processor (image processor + tokenizer) saved there")
    return model.eval(), processor
