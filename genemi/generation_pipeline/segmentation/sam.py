"""SAM (Meta's ``segment-anything``) from an original checkpoint, variant read from the state dict.

Per image the embedding is computed once; all boxes of all its items go through the mask decoder as one
batch; each box takes the best of SAM's 3 masks (predicted IoU), and each item the mask of its
best-scoring box (the original took "the first one").
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import torch

from genemi.errors import CheckpointError, ConfigError
from genemi.generation_pipeline.segmentation.config import SegmentConfig
from genemi.generation_pipeline.stage import StageContext, release_to_cpu

#: (encoder depth, width) -> Meta's name
SAM_VARIANTS = {(12, 768): "vit_b", (24, 1024): "vit_l", (32, 1280): "vit_h"}


def sam_config_from_state_dict(sd: dict[str, torch.Tensor]) -> dict:
    """Every size of a SAM model, read from its weights (works for vit_b/l/h and reduced models)."""
    try:
        embed_dim, _, patch, _ = sd["image_encoder.patch_embed.proj.weight"].shape
        depth = len({k.split(".")[2] for k in sd if k.startswith("image_encoder.blocks.")})
        grid = sd["image_encoder.pos_embed"].shape[1]
        head_dim = sd["image_encoder.blocks.0.attn.rel_pos_h"].shape[1]
        rel = [sd[f"image_encoder.blocks.{i}.attn.rel_pos_h"].shape[0] for i in range(depth)]
        window = (min(rel) + 1) // 2
        cfg = {
            "variant": SAM_VARIANTS.get((depth, embed_dim), "custom"),
            "embed_dim": int(embed_dim), "depth": depth, "patch_size": int(patch), "img_size": int(grid * patch),
            "num_heads": int(embed_dim // head_dim), "window_size": int(window),
            "global_attn_indexes": [i for i, r in enumerate(rel) if r == 2 * grid - 1 and r != min(rel)],
            "mlp_ratio": sd["image_encoder.blocks.0.mlp.lin1.weight"].shape[0] / embed_dim,
            "out_chans": int(sd["image_encoder.neck.0.weight"].shape[0]),
            "mask_in_chans": int(sd["prompt_encoder.mask_downscaling.3.weight"].shape[0]),
            "decoder_depth": len({k.split(".")[3] for k in sd if k.startswith("mask_decoder.transformer.layers.")}),
            "decoder_mlp_dim": int(sd["mask_decoder.transformer.layers.0.mlp.lin1.weight"].shape[0]),
            "iou_hidden": int(sd["mask_decoder.iou_prediction_head.layers.0.weight"].shape[0]),
            "iou_depth": len({k.split(".")[3] for k in sd if k.startswith("mask_decoder.iou_prediction_head.layers.")}),
        }
    except KeyError as exc:
        raise CheckpointError(f"not a segment-anything checkpoint: key {exc.args[0]!r} is missing") from exc
    return cfg


def sam_state_dict(obj) -> dict:
    """The state dict of a loaded SAM checkpoint (Meta's plain state dict, or one under ``'model'``)."""
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict):
        raise CheckpointError(f"expected a SAM state dict, found {type(obj).__name__}")
    return obj


def build_sam(c: dict):
    """A randomly initialised ``segment_anything`` ``Sam`` of the sizes :func:`sam_config_from_state_dict` read
    (under ``torch.device("meta")`` it costs no memory)."""
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    grid = c["img_size"] // c["patch_size"]
    return Sam(
        image_encoder=ImageEncoderViT(
            depth=c["depth"], embed_dim=c["embed_dim"], img_size=c["img_size"], mlp_ratio=c["mlp_ratio"],
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=c["num_heads"], patch_size=c["patch_size"],
            qkv_bias=True, use_rel_pos=True, global_attn_indexes=c["global_attn_indexes"], window_size=c["window_size"],
            out_chans=c["out_chans"]),
        prompt_encoder=PromptEncoder(embed_dim=c["out_chans"], image_embedding_size=(grid, grid),
                                     input_image_size=(c["img_size"], c["img_size"]), mask_in_chans=c["mask_in_chans"]),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3, transformer_dim=c["out_chans"], iou_head_depth=c["iou_depth"],
            iou_head_hidden_dim=c["iou_hidden"],
            transformer=TwoWayTransformer(depth=c["decoder_depth"], embedding_dim=c["out_chans"],
                                          mlp_dim=c["decoder_mlp_dim"], num_heads=8)),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375],
    )


def _variant(c: dict) -> str:
    return f"read as SAM {c['variant']} (depth {c['depth']}, width {c['embed_dim']})"


def load_sam(checkpoint: str | Path, device: str | torch.device = "cpu"):
    """``(Sam, config)`` from an original ``sam_vit_*.pth`` (plain state dict, loaded with weights_only)."""
    from genemi.models.checkpoints import load_weights_strict, torch_load

    obj = torch_load(checkpoint)
    try:
        sd = sam_state_dict(obj)
    except CheckpointError as exc:
        raise CheckpointError(f"{checkpoint}: {exc}") from None
    c = sam_config_from_state_dict(sd)
    sam = build_sam(c)
    load_weights_strict(sam, sd, str(checkpoint), hint=_variant(c))
    return sam.to(device).eval(), c


def check_sam_checkpoint(checkpoint: str | Path, what: str = "--sam-checkpoint") -> dict:
    """What :func:`load_sam` would refuse, found from the file's structure (:mod:`genemi.models.files`): a
    damaged or truncated file, objects a safe load refuses, another model's weights, a missing key or a
    wrong shape for the SAM variant its weights describe. Returns the config; no weight is read."""
    from genemi.models.checkpoints import state_dict_problems
    from genemi.models.files import as_meta, fail, inspect_torch_file, require_weights_only

    found = require_weights_only(inspect_torch_file(checkpoint, what), what)
    try:
        sd = as_meta(sam_state_dict(found.content))
        c = sam_config_from_state_dict(sd)
    except CheckpointError as exc:
        raise fail(what, found.path, str(exc)) from None
    with torch.device("meta"):
        sam = build_sam(c)
    problems = state_dict_problems(sam, sd, shown=3)
    if problems:
        raise fail(what, found.path, f"does not fit SAM ({_variant(c)}): {'; '.join(problems)}")
    return c


class SamSegmenter:
    """SAM with one image embedding per image and every box of the image decoded as one batch."""

    name = "sam"

    def __init__(self, config: SegmentConfig, context: StageContext):
        self.checkpoint, self.device = config.sam_checkpoint, context.device
        self.predictor = None

    def check(self) -> None:
        """The checkpoint read as structure and every key and shape checked (:func:`check_sam_checkpoint`)."""
        if not self.checkpoint:
            raise ConfigError("segmentation needs --sam-checkpoint (an original sam_vit_*.pth file)")
        path = Path(self.checkpoint)
        if not path.is_file():
            raise ConfigError(f"--sam-checkpoint {path}: " + ("is a folder, expected a .pth file" if path.is_dir()
                                                               else "file not found"))
        check_sam_checkpoint(path)

    def load(self) -> None:
        from segment_anything import SamPredictor

        if self.predictor is None:
            sam, self.config = load_sam(self.checkpoint, self.device)
            self.predictor = SamPredictor(sam)
        self.predictor.model.to(self.device)

    def offload(self) -> None:
        if self.predictor is not None:
            self.predictor.reset_image()
            release_to_cpu(self.predictor.model)

    @torch.no_grad()
    def segment(self, image: np.ndarray, boxes: torch.Tensor, chunk: int = 16) -> tuple[list[np.ndarray], np.ndarray]:
        """Best of SAM's 3 masks for each box: ``(masks [H, W] bool each, predicted IoUs [N])``.

        The image embedding is computed once; boxes go through the decoder in batches; only the chosen
        mask of each box is upsampled to full resolution (huge images stay within memory).
        """
        p = self.predictor
        model = p.model
        p.set_image(image)
        tb = p.transform.apply_boxes_torch(boxes.to(p.device), image.shape[:2])
        masks, scores = [], []
        for i in range(0, len(tb), chunk):
            sparse, dense = model.prompt_encoder(points=None, boxes=tb[i : i + chunk], masks=None)
            low, iou = model.mask_decoder(image_embeddings=p.features, image_pe=model.prompt_encoder.get_dense_pe(),
                                          sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                          multimask_output=True)
            best = iou.argmax(dim=1)
            rows = torch.arange(len(best), device=best.device)
            chosen, chosen_iou = low[rows, best][:, None], iou[rows, best]
            for k in range(len(chosen)):
                full = model.postprocess_masks(chosen[k : k + 1], p.input_size, p.original_size)
                masks.append((full[0, 0] > model.mask_threshold).cpu().numpy())
            scores.append(chosen_iou.float().cpu())
        return masks, torch.cat(scores).numpy()
