"""Contrastive losses: ``clip`` (GeNeMi), ``negclip``, ``ceclip`` (CE-CLIP: ITC + IMC + CMR) and ``triplet``
(TripletCLIP: hard-negative captions *and* their pictures).

Every loss takes L2-normalised features and the logit-scale *multiplier* (``exp`` of the parameter) and
returns a dict of named terms whose ``"loss"`` entry is what the trainer back-propagates; the trainer
logs the other entries without knowing which loss runs. With several processes, features (and negatives,
validity masks) are all-gathered; gradients flow through this rank's slice, and every rank computes the
loss over the global batch (open_clip's ``local_loss=False``).

Shapes: ``image_features`` ``[B, D]``, ``text_features`` ``[B, D]`` (positive captions),
``neg_features`` ``[B, K, D]`` (``K`` hard-negative captions per sample, type ``k`` in column ``k``),
``neg_valid`` ``[B, K]`` bool; for ``triplet`` also ``neg_image_features`` ``[B, D]`` (row ``i``: the picture of
the negative caption in ``neg_features[i, 0]``) and ``neg_image_valid`` ``[B]`` bool. A loss that needs negative
captions declares ``needs_negatives``; one that needs negative images, ``needs_negative_images``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from genemi.distributed import all_gather_with_local_grad
from genemi.errors import ConfigError, TrainingError
from genemi.options import Section, option

ImcVariant = Literal["fixed", "released_2024", "released_2023"]
ThresholdType = Literal["mean", "max", "fixed"]


@dataclass
class LossConfig(Section):
    """Which objective to train and its knobs (CE-CLIP names in brackets)."""

    name: Literal["clip", "negclip", "ceclip", "triplet"] = option("clip", "objective", flag="--loss")
    #: hard negatives are extra image->text columns [--hardnegative]; always on for negclip
    hard_negatives_in_itc: bool = option(True, "ceclip: hard negatives as extra image->text columns "
                                         "(CE-CLIP's --hardnegative)")
    #: mask invalid negatives out of the ITC softmax; None = loss default (negclip: True, ceclip: False as the original)
    mask_invalid_in_itc: bool | None = option(None, "mask invalid negatives out of the ITC softmax; auto: negclip "
                                              "masks, ceclip does not (as the original)", default_text="auto")
    imc: bool = option(True, "ceclip: the IMC term (CE-CLIP's --imc-loss)")
    imc_weight: float = option(0.2, "ceclip: IMC weight", at_least=0)
    #: "fixed" = positive image-text logit vs caption-negative logits (commit 7f4433a); the released_* variants
    #: reproduce the shipped, buggy targets for comparison only
    imc_variant: ImcVariant = option("fixed", "IMC target: fixed, or the shipped buggy variants, for reproduction "
                                     "only")
    imc_mask_invalid: bool = option(False, "ceclip: mask invalid negatives in IMC")
    cmr: bool = option(True, "ceclip: the CMR term (CE-CLIP's --cmr-loss)")
    cmr_weight: float = option(0.2, "ceclip: CMR weight", at_least=0)
    threshold_type: ThresholdType = option("mean", "CMR margin schedule")
    upper_bound: float = option(10.0, "CMR adaptive margin cap, logit units", at_least=0)
    fixed_threshold: float = option(2.0, "CMR margin for --threshold-type fixed")
    #: the original re-initialises adaptive thresholds to 0 at every epoch start
    reset_thresholds_each_epoch: bool = option(True, "ceclip: adaptive margins start from 0 every epoch (as the "
                                               "original)")


def _symmetric_ce(logits_i2t: torch.Tensor, logits_t2i: torch.Tensor) -> torch.Tensor:
    labels = torch.arange(logits_t2i.shape[0], device=logits_t2i.device)
    return (F.cross_entropy(logits_i2t, labels) + F.cross_entropy(logits_t2i, labels)) / 2


def _top1(logits: torch.Tensor) -> torch.Tensor:
    """Fraction of rows whose largest logit is the diagonal one (row ``i``, column ``i``)."""
    labels = torch.arange(logits.shape[0], device=logits.device)
    return (logits.argmax(dim=1) == labels).to(logits.dtype).mean()


class ClipLoss(nn.Module):
    """Symmetric InfoNCE over the (global) batch: the GeNeMi objective.

    Sibling variations placed in one batch by the mining sampler are hard negatives in both directions.
    """

    needs_negatives = False

    def __init__(self, cfg: LossConfig | None = None):
        super().__init__()
        self.cfg = cfg or LossConfig(name="clip")

    def forward(self, image_features, text_features, logit_scale, **_unused) -> dict[str, torch.Tensor]:
        img = all_gather_with_local_grad(image_features)
        txt = all_gather_with_local_grad(text_features)
        logits = logit_scale * img @ txt.T
        loss = _symmetric_ce(logits, logits.T)
        return {"loss": loss, "contrastive_loss": loss.detach()}

    def on_epoch_start(self) -> None:
        pass


class CeClipLoss(nn.Module):
    """CE-CLIP: hard-negative ITC + λ_imc·IMC + λ_cmr·CMR with per-type adaptive margins.

    The CMR margins θ_k live in this module (saved with the training state). Each step uses the margins of
    the previous step and then updates them, per negative type k, to ``mean_i(g_i) − mean over valid i of
    a_ik`` (``mean``) or ``max_i(m_ik·g_i − a_ik)/5`` (``max``), clamped to ``[0, upper_bound]``; a type
    with no valid negative in the batch keeps its previous margin (the original produced NaN there).
    """

    needs_negatives = True
    default_mask_invalid_in_itc = False

    def __init__(self, cfg: LossConfig | None = None):
        super().__init__()
        self.cfg = cfg or LossConfig(name="ceclip")
        self.thresholds: torch.Tensor | None = None  # [K], logit units

    def on_epoch_start(self) -> None:
        if self.cfg.reset_thresholds_each_epoch:
            self.thresholds = None

    def get_extra_state(self):
        return {"thresholds": None if self.thresholds is None else self.thresholds.cpu()}

    def set_extra_state(self, state) -> None:
        value = state.get("thresholds") if isinstance(state, dict) else None
        self.thresholds = None if value is None else value.clone()

    def _mask_invalid_in_itc(self) -> bool:
        if self.cfg.mask_invalid_in_itc is not None:
            return self.cfg.mask_invalid_in_itc
        return self.default_mask_invalid_in_itc

    def forward(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        logit_scale: torch.Tensor,
        neg_features: torch.Tensor | None = None,
        neg_valid: torch.Tensor | None = None,
        thresholds: torch.Tensor | float | None = None,
        **_unused,
    ) -> dict[str, torch.Tensor]:
        """Loss terms over the global batch; ``thresholds`` overrides the stored margins (functional use)."""
        if neg_features is None or neg_features.shape[1] == 0:
            raise ValueError(f"{type(self).__name__} needs hard-negative captions (neg_features [B, K, D])")
        b, k, d = neg_features.shape
        if neg_valid is None:
            neg_valid = torch.ones(b, k, dtype=torch.bool, device=neg_features.device)
        img = all_gather_with_local_grad(image_features)
        pos = all_gather_with_local_grad(text_features)
        neg = all_gather_with_local_grad(neg_features.reshape(b, k * d)).reshape(-1, k, d)
        valid = all_gather_with_local_grad(neg_valid.bool())
        n = img.shape[0]
        neg_flat = neg.reshape(n * k, d)
        valid_flat = valid.reshape(n * k)
        cfg = self.cfg

        # 1. ITC: image->text over positives (+ every hard negative of the batch); text->image plain.
        logits_pos = logit_scale * img @ pos.T
        positive = logits_pos.diagonal()
        i2t = logits_pos
        if cfg.hard_negatives_in_itc:
            logits_neg = logit_scale * img @ neg_flat.T
            if self._mask_invalid_in_itc():
                logits_neg = logits_neg.masked_fill(~valid_flat[None, :], float("-inf"))
            i2t = torch.cat([logits_pos, logits_neg], dim=1)
        itc = _symmetric_ce(i2t, logits_pos.T)
        out = {"itc_loss": itc.detach()}
        total = itc

        # 2. CMR: hinge between each image's positive and its own negatives, margin per type.
        if cfg.cmr:
            own = logit_scale * torch.einsum("nd,nkd->nk", img, neg)
            masked_own = own * valid
            theta = self._current_thresholds(thresholds, k, own)
            hinge = torch.relu(theta + masked_own - positive[:, None]) * valid
            cmr = hinge.sum() / (n * k)
            total = total + cfg.cmr_weight * cmr
            out["cmr_loss"] = cmr.detach()
            next_theta = self._updated_thresholds(positive.detach(), masked_own.detach(), valid, theta.detach())
            out["thresholds"] = next_theta
            if thresholds is None:
                self.thresholds = next_theta

        # 3. IMC: the positive caption against the batch's hard negatives, in text space.
        if cfg.imc:
            caption_neg = logit_scale * pos @ neg_flat.T
            if cfg.imc_mask_invalid:
                caption_neg = caption_neg.masked_fill(~valid_flat[None, :], float("-inf"))
            imc = imc_loss(positive, caption_neg, cfg.imc_variant)
            total = total + cfg.imc_weight * imc
            out["imc_loss"] = imc.detach()

        out["loss"] = total
        return out

    def _current_thresholds(self, given, k: int, like: torch.Tensor) -> torch.Tensor:
        if self.cfg.threshold_type == "fixed":
            return like.new_full((k,), self.cfg.fixed_threshold)
        if given is None:
            given = self.thresholds
        if given is None:
            return like.new_zeros(k)
        given = torch.as_tensor(given, dtype=like.dtype, device=like.device)
        if given.ndim == 2:  # the original's [B, K] layout (all rows equal)
            given = given[0]
        return given.expand(k).clone() if given.ndim == 0 else given

    def _updated_thresholds(self, positive, masked_own, valid, previous) -> torch.Tensor:
        cfg = self.cfg
        if cfg.threshold_type == "fixed":
            return previous
        validf = valid.to(masked_own.dtype)
        if cfg.threshold_type == "mean":
            counts = validf.sum(0)
            neg_mean = masked_own.sum(0) / counts.clamp_min(1)
            update = positive.mean() - neg_mean
            update = torch.where(counts > 0, update, previous)
        else:  # "max": the original's max over samples of (m·g − a), divided by 5
            update = (validf * positive[:, None] - masked_own).max(dim=0).values / 5
        return update.clamp(0.0, cfg.upper_bound)


class NegClipLoss(CeClipLoss):
    """NegCLIP: hard-negative captions as extra image->text columns; no IMC, no CMR."""

    default_mask_invalid_in_itc = True

    def __init__(self, cfg: LossConfig | None = None):
        cfg = cfg or LossConfig(name="negclip")
        cfg = LossConfig(**{**vars(cfg), "imc": False, "cmr": False, "hard_negatives_in_itc": True})
        super().__init__(cfg)


def imc_loss(positive: torch.Tensor, caption_neg: torch.Tensor, variant: ImcVariant = "fixed") -> torch.Tensor:
    """Intra-modal contrastive term.

    ``positive`` ``[N]``: image-text logits g_i; ``caption_neg`` ``[N, N·K]``: caption-vs-negative logits.
    ``fixed``: softmax over ``[g_i, caption_neg_i]`` with target g_i (the intended objective).
    ``released_2024`` / ``released_2023``: the shipped CE-CLIP code, whose target is the first negative of
    sample 0 for every row: kept only to reproduce published runs.
    """
    zeros = torch.zeros(positive.shape[0], dtype=torch.long, device=positive.device)
    if variant == "released_2024":
        return F.cross_entropy(caption_neg, zeros)
    logits = torch.cat([positive[:, None], caption_neg], dim=1)
    target = zeros if variant == "fixed" else zeros + 1
    return F.cross_entropy(logits, target)


def negclip_terms(img: torch.Tensor, txt: torch.Tensor, neg: torch.Tensor, neg_valid: torch.Tensor,
                  logit_scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """TripletCLIP's ``negclip(I, T, N)``: image->text cross-entropy over the candidates ``[T ; N]`` (``2B``
    columns, the right caption at column ``i``) plus text->image cross-entropy over the images only, halved;
    and its accuracy (mean of the two directions' top-1). ``neg_valid`` ``[B]`` masks columns of ``N`` out."""
    logits = logit_scale * img @ txt.T
    logits_neg = (logit_scale * img @ neg.T).masked_fill(~neg_valid[None, :], float("-inf"))
    i2t = torch.cat([logits, logits_neg], dim=1)
    return _symmetric_ce(i2t, logits.T), (_top1(i2t) + _top1(logits.T)) / 2


class TripletClipLoss(nn.Module):
    """TripletCLIP (Patel et al., NeurIPS 2024): ``negclip(I, T, T') + negclip(I', T', T)``.

    ``T'`` is a minimally rewritten caption that is false of ``I`` and ``I'`` its picture (a generated image),
    so the second half is the same objective seen from the negative pair, with the true captions as its hard
    negatives (see :func:`negclip_terms`). With every row carrying a valid negative this is exactly the
    official ``tripletclip_loss`` (values, accuracy and gradients, logit scale included; tested against its
    reference cases).

    Generalisation for batches that mix in rows without a negative (``--coco-dataset`` pool pairs, an
    unreadable negative image): a row whose negative caption is invalid has its ``T'`` column masked out of
    the first half; a row without a valid negative caption *and* negative image is left out of the second
    half, which is then ``negclip`` over the remaining rows only (zero when none remain). The terms
    ``negclip_positive`` and ``negclip_negative`` are the two halves; ``accuracy`` is the mean of the halves'
    accuracies (the first alone when no row has a negative image).
    """

    needs_negatives = True
    needs_negative_images = True

    def __init__(self, cfg: LossConfig | None = None):
        super().__init__()
        self.cfg = cfg or LossConfig(name="triplet")

    def on_epoch_start(self) -> None:
        pass

    def forward(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        logit_scale: torch.Tensor,
        neg_features: torch.Tensor | None = None,
        neg_valid: torch.Tensor | None = None,
        neg_image_features: torch.Tensor | None = None,
        neg_image_valid: torch.Tensor | None = None,
        **_unused,
    ) -> dict[str, torch.Tensor]:
        """``neg_features`` ``[B, D]`` or ``[B, 1, D]`` (``T'``), ``neg_image_features`` ``[B, D]`` (``I'``);
        the validity masks ``[B]`` / ``[B, 1]`` default to all rows valid."""
        b = image_features.shape[0]
        if neg_features is None or neg_image_features is None:
            raise TrainingError("--loss triplet needs negative captions and negative images in every batch")
        if neg_features.ndim == 3:
            if neg_features.shape[1] != 1:
                raise TrainingError(f"--loss triplet takes one negative caption per row (the one its negative "
                                    f"image depicts), got {neg_features.shape[1]}")
            neg_features = neg_features[:, 0]
            neg_valid = None if neg_valid is None else neg_valid[:, 0]
        caption_ok = torch.ones(b, dtype=torch.bool, device=image_features.device) if neg_valid is None else neg_valid
        image_ok = caption_ok if neg_image_valid is None else caption_ok & neg_image_valid.bool()
        img = all_gather_with_local_grad(image_features)
        txt = all_gather_with_local_grad(text_features)
        neg_txt = all_gather_with_local_grad(neg_features)
        neg_img = all_gather_with_local_grad(neg_image_features)
        caption_ok = all_gather_with_local_grad(caption_ok.bool())
        image_ok = all_gather_with_local_grad(image_ok)

        positive, positive_acc = negclip_terms(img, txt, neg_txt, caption_ok, logit_scale)
        rows = image_ok.nonzero().squeeze(1)  # every row when all have a negative: the official loss
        if rows.numel():
            negative, negative_acc = negclip_terms(neg_img[rows], neg_txt[rows], txt[rows], image_ok[rows],
                                                   logit_scale)  # fmt: skip
        else:
            negative, negative_acc = positive.new_zeros(()), None
        accuracy = positive_acc if negative_acc is None else (positive_acc + negative_acc) / 2
        return {"loss": positive + negative, "negclip_positive": positive.detach(),
                "negclip_negative": negative.detach(), "accuracy": accuracy.detach()}


#: ``--loss`` name -> loss class
LOSSES: dict[str, type[nn.Module]] = {
    "clip": ClipLoss,
    "negclip": NegClipLoss,
    "ceclip": CeClipLoss,
    "triplet": TripletClipLoss,
}


def build_loss(cfg: LossConfig) -> nn.Module:
    if cfg.name not in LOSSES:
        raise ConfigError(f"unknown loss {cfg.name!r}; choose one of {', '.join(LOSSES)}")
    return LOSSES[cfg.name](cfg)
