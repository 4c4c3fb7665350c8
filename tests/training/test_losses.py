"""Losses on hand-computed cases and against the original CE-CLIP and TripletCLIP fixtures."""

import math

import pytest
import torch
import torch.nn.functional as F

from genemi.training.losses import CeClipLoss, ClipLoss, LossConfig, NegClipLoss, TripletClipLoss, imc_loss


def _unit(*rows):
    t = torch.tensor(rows, dtype=torch.float64)
    return t / t.norm(dim=-1, keepdim=True)


def test_clip_loss_matches_hand_computed_two_by_two():
    img = _unit([1.0, 0.0], [0.0, 1.0])
    txt = _unit([1.0, 0.0], [1.0, 1.0])
    s = torch.tensor(2.0, dtype=torch.float64)
    out = ClipLoss()(img, txt, s)
    c = 1 / math.sqrt(2)
    logits = [[2.0, 2 * c], [0.0, 2 * c]]
    i2t = (-math.log(math.exp(2) / (math.exp(2) + math.exp(2 * c)))
           - math.log(math.exp(2 * c) / (1 + math.exp(2 * c)))) / 2
    t2i = (-math.log(math.exp(logits[0][0]) / (math.exp(2) + 1))
           - math.log(math.exp(2 * c) / (2 * math.exp(2 * c)))) / 2
    assert out["loss"].item() == pytest.approx((i2t + t2i) / 2, abs=1e-12)


def test_clip_loss_equals_open_clip_cliploss():
    from open_clip.loss import ClipLoss as OpenClipLoss

    g = torch.Generator().manual_seed(0)
    img = F.normalize(torch.randn(8, 16, generator=g), dim=-1)
    txt = F.normalize(torch.randn(8, 16, generator=g), dim=-1)
    s = torch.tensor(14.3)
    assert ClipLoss()(img, txt, s)["loss"].item() == pytest.approx(OpenClipLoss()(img, txt, s).item(), abs=1e-6)


def test_negclip_adds_hard_negative_columns_only_to_image_to_text():
    img = _unit([1.0, 0.0], [0.0, 1.0])
    txt = _unit([1.0, 0.0], [0.0, 1.0])
    neg = _unit([1.0, 0.2], [0.3, 1.0]).view(2, 1, 2)
    s = torch.tensor(1.0, dtype=torch.float64)
    out = NegClipLoss()(img, txt, s, neg_features=neg, neg_valid=torch.ones(2, 1, dtype=torch.bool))
    i2t_logits = torch.cat([img @ txt.T, img @ neg.view(2, 2).T], 1)
    labels = torch.arange(2)
    expected = (F.cross_entropy(i2t_logits, labels) + F.cross_entropy((img @ txt.T).T, labels)) / 2
    assert out["loss"].item() == pytest.approx(expected.item(), abs=1e-12)
    assert "imc_loss" not in out and "cmr_loss" not in out


def test_negclip_masks_invalid_negatives_by_default():
    img, txt = _unit([1.0, 0.0], [0.0, 1.0]), _unit([1.0, 0.0], [0.0, 1.0])
    neg = _unit([1.0, 0.1], [0.1, 1.0]).view(2, 1, 2)
    s = torch.tensor(3.0, dtype=torch.float64)
    masked = NegClipLoss()(img, txt, s, neg_features=neg, neg_valid=torch.zeros(2, 1, dtype=torch.bool))
    assert masked["loss"].item() == pytest.approx(ClipLoss()(img, txt, s)["loss"].item(), abs=1e-12)


def test_imc_fixed_variant_targets_the_positive():
    positive = torch.tensor([5.0, 1.0], dtype=torch.float64)
    caption_neg = torch.tensor([[1.0, 2.0], [0.0, 3.0]], dtype=torch.float64)
    got = imc_loss(positive, caption_neg, "fixed").item()
    row0 = -5 + math.log(math.exp(5) + math.exp(1) + math.exp(2))
    row1 = -1 + math.log(math.exp(1) + math.exp(0) + math.exp(3))
    assert got == pytest.approx((row0 + row1) / 2, abs=1e-12)
    released = imc_loss(positive, caption_neg, "released_2024").item()
    assert released == pytest.approx(
        ((-1 + math.log(math.exp(1) + math.exp(2))) + (0 + math.log(1 + math.exp(3)))) / 2, abs=1e-12
    )


def test_cmr_margin_update_keeps_previous_threshold_for_type_without_valid_negative():
    cfg = LossConfig(name="ceclip", imc=False, threshold_type="mean", upper_bound=10.0)
    loss = CeClipLoss(cfg)
    g = torch.Generator().manual_seed(1)
    img = F.normalize(torch.randn(4, 8, generator=g), dim=-1)
    txt = F.normalize(torch.randn(4, 8, generator=g), dim=-1)
    neg = F.normalize(torch.randn(4, 2, 8, generator=g), dim=-1)
    valid = torch.tensor([[True, False]] * 4)
    previous = torch.tensor([1.0, 7.5])
    out = loss(img, txt, torch.tensor(10.0), neg_features=neg, neg_valid=valid, thresholds=previous)
    assert torch.isfinite(out["thresholds"]).all()
    assert out["thresholds"][1].item() == pytest.approx(7.5)
    pos = 10 * (img * txt).sum(-1)
    negl = 10 * (img * neg[:, 0]).sum(-1)
    assert out["thresholds"][0].item() == pytest.approx(float((pos.mean() - negl.mean()).clamp(0, 10)), abs=1e-5)


def test_ceclip_stateful_thresholds_thread_between_steps_and_reset_per_epoch():
    cfg = LossConfig(name="ceclip", imc=False, threshold_type="mean", upper_bound=10.0)
    loss = CeClipLoss(cfg)
    g = torch.Generator().manual_seed(2)
    img = F.normalize(torch.randn(4, 8, generator=g, dtype=torch.float64), dim=-1)
    txt = F.normalize(img + 0.3 * torch.randn(4, 8, generator=g, dtype=torch.float64), dim=-1)
    neg = F.normalize(torch.randn(4, 3, 8, generator=g, dtype=torch.float64), dim=-1)
    s = torch.tensor(10.0, dtype=torch.float64)

    # the "mean" update computed by hand: mean positive logit minus each type's mean negative logit, clamped
    positive = 10 * (img * txt).sum(-1)
    own = 10 * torch.einsum("nd,nkd->nk", img, neg)
    expected = (positive.mean() - own.mean(0)).clamp(0, 10)
    assert ((expected > 0) & (expected < 10)).all()  # the data exercises the margin, not only its clamps

    def cmr_by_hand(theta):
        return (torch.relu(theta + own - positive[:, None]).sum() / own.numel()).item()

    first = loss(img, txt, s, neg_features=neg)
    assert first["cmr_loss"].item() == pytest.approx(cmr_by_hand(torch.zeros(3, dtype=torch.float64)), abs=1e-12)
    assert torch.allclose(first["thresholds"], expected, atol=1e-12)
    assert torch.allclose(loss.thresholds, expected, atol=1e-12)

    # the next step hinges on the stored margins (not on zeros)
    second = loss(img, txt, s, neg_features=neg)
    assert second["cmr_loss"].item() == pytest.approx(cmr_by_hand(expected), abs=1e-12)
    assert cmr_by_hand(expected) > cmr_by_hand(torch.zeros(3, dtype=torch.float64)) + 1e-3

    fresh = CeClipLoss(cfg)
    fresh.load_state_dict(loss.state_dict())
    assert torch.allclose(fresh.thresholds, expected, atol=1e-12)
    assert fresh(img, txt, s, neg_features=neg)["cmr_loss"].item() == pytest.approx(cmr_by_hand(expected), abs=1e-12)
    loss.on_epoch_start()
    assert loss.thresholds is None
    after_reset = loss(img, txt, s, neg_features=neg)
    assert after_reset["cmr_loss"].item() == pytest.approx(cmr_by_hand(torch.zeros(3, dtype=torch.float64)), abs=1e-12)


def _fixture_cases(shared_dir):
    path = shared_dir / "fixtures" / "ceclip_loss" / "cases.pt"
    if not path.exists():
        pytest.skip("CE-CLIP fixtures absent")
    return torch.load(path, weights_only=True)


def _run_case(case, dtype, thresholds, variant="fixed"):
    c, inp, b = case["config"], case["inputs"], case["config"]["batch_size"]
    img = inp["image_features"].to(dtype).clone().requires_grad_()
    txt = inp["text_features"].to(dtype).clone().requires_grad_()
    scale = inp["logit_scale"].to(dtype).clone().requires_grad_()
    cfg = LossConfig(
        name="ceclip", hard_negatives_in_itc=c["hardnegative"], imc=c["imc"], imc_weight=c["imc_weight"],
        imc_variant=variant, cmr=bool(c["cmr"]), cmr_weight=c["cmr_weight"],
        threshold_type=c["threshold_type"] or "mean",
    )
    if isinstance(thresholds, torch.Tensor):
        thresholds = thresholds.to(dtype)
    out = CeClipLoss(cfg)(img, txt[:b], scale, neg_features=txt[b:].view(b, 4, -1),
                          neg_valid=inp["valid_caption_mask"].bool(), thresholds=thresholds)
    out["loss"].backward()
    return out, {"image_features": img.grad, "text_features": txt.grad, "logit_scale": scale.grad}


@pytest.mark.parametrize("dtype,key,tol", [(torch.float64, "outputs_float64", 1e-10),
                                           (torch.float32, "outputs_float32", 1e-4)])
def test_ceclip_matches_original_fixtures(shared_dir, dtype, key, tol):
    data = _fixture_cases(shared_dir)
    for case in data["cases"]:
        ref = case[key]
        for variant, total_key, grad_key, imc_key in [
            ("fixed", "total_reference", "grad_reference", "imc_fixed_7f4433a"),
            ("released_2024", "total_released", "grad_released", "imc_released_321682b"),
        ]:
            out, grads = _run_case(case, dtype, case["thresholds_in"], variant)
            close = lambda a, b: torch.allclose(torch.as_tensor(a, dtype=dtype), torch.as_tensor(b, dtype=dtype),
                                                rtol=tol, atol=tol)  # noqa: E731
            assert close(out["loss"].detach(), ref[total_key]), case["name"]
            assert close(out["itc_loss"], ref["itc"]), case["name"]
            if case["config"]["imc"]:
                assert close(out["imc_loss"], ref[imc_key]), case["name"]
            if case["config"]["cmr"]:
                assert close(out["cmr_loss"], ref["cmr"]), case["name"]
            for name, grad in grads.items():
                assert close(grad, ref[grad_key][name]), (case["name"], name)
            if case["config"]["cmr"] and case["config"]["threshold_type"] != "fixed":
                expected = torch.as_tensor(ref["thresholds_next"], dtype=dtype)[0]
                got = out["thresholds"]
                nan = torch.isnan(expected)
                # where the original produced NaN (a type with no valid negative) we keep the previous margin
                assert close(got[~nan], expected[~nan]), case["name"]
                assert torch.isfinite(got).all()


def test_ceclip_matches_original_threshold_sequences(shared_dir):
    data = _fixture_cases(shared_dir)
    for seq in data["sequences"]:
        c = seq["config"]
        cfg = LossConfig(name="ceclip", hard_negatives_in_itc=c["hardnegative"], imc=c["imc"],
                         imc_weight=c["imc_weight"], cmr=True, cmr_weight=c["cmr_weight"],
                         threshold_type=c["threshold_type"])
        loss = CeClipLoss(cfg)
        for step in seq["steps"]:
            inp, b = step["inputs"], c["batch_size"]
            txt = inp["text_features"].double()
            out = loss(inp["image_features"].double(), txt[:b], inp["logit_scale"].double(),
                       neg_features=txt[b:].view(b, 4, -1), neg_valid=inp["valid_caption_mask"].bool())
            ref = step["outputs_float64"]
            assert out["loss"].item() == pytest.approx(float(ref["total_reference"]), abs=1e-9)
            assert torch.allclose(loss.thresholds, torch.as_tensor(ref["thresholds_next"]).double()[0], atol=1e-9)


# --- TripletCLIP ----------------------------------------------------------------------------------------------


def _ce(row, target):
    """Cross-entropy of one row of logits (plain floats) with the right answer at ``target``."""
    return -row[target] + math.log(sum(math.exp(v) for v in row))


def test_triplet_is_two_negclip_halves_on_a_hand_computed_two_by_two():
    img, txt = _unit([1.0, 0.0], [0.0, 1.0]), _unit([1.0, 0.0], [0.6, 0.8])
    neg_txt, neg_img = _unit([0.8, 0.6], [0.0, 1.0]), _unit([0.6, 0.8], [1.0, 0.0])
    out = TripletClipLoss()(img, txt, torch.tensor(1.0, dtype=torch.float64), neg_features=neg_txt.view(2, 1, 2),
                            neg_image_features=neg_img)
    # negclip(I, T, T'): rows of I against [T0, T1, T'0, T'1]; rows of T against [I0, I1]
    first = ((_ce([1.0, 0.6, 0.8, 0.0], 0) + _ce([0.0, 0.8, 0.6, 1.0], 1)) / 2
             + (_ce([1.0, 0.0], 0) + _ce([0.6, 0.8], 1)) / 2) / 2
    # negclip(I', T', T): rows of I' against [T'0, T'1, T0, T1]; rows of T' against [I'0, I'1]
    second = ((_ce([0.96, 0.8, 0.6, 1.0], 0) + _ce([0.8, 0.0, 1.0, 0.6], 1)) / 2
              + (_ce([0.96, 0.8], 0) + _ce([0.8, 0.0], 1)) / 2) / 2
    assert out["negclip_positive"].item() == pytest.approx(first, abs=1e-12)
    assert out["negclip_negative"].item() == pytest.approx(second, abs=1e-12)
    assert out["loss"].item() == pytest.approx(first + second, abs=1e-12)
    # top-1: first half i2t 1/2 (row 1 prefers T'1), t2i 2/2; second half i2t 0/2, t2i 1/2
    assert out["accuracy"].item() == pytest.approx(((0.5 + 1.0) / 2 + (0.0 + 0.5) / 2) / 2)


def test_triplet_rows_without_a_negative_are_masked_out_and_left_out():
    g = torch.Generator().manual_seed(3)
    img, txt, neg_txt, neg_img = (F.normalize(torch.randn(4, 8, generator=g, dtype=torch.float64), dim=-1)
                                  for _ in range(4))  # fmt: skip
    s = torch.tensor(5.0, dtype=torch.float64)
    caption_ok = torch.tensor([True, True, True, False])  # row 3: a pool pair, no negative at all
    image_ok = torch.tensor([True, False, True, False])  # row 1: its negative image could not be read
    neg_txt_in, neg_img_in = neg_txt.clone().requires_grad_(), neg_img.clone().requires_grad_()
    out = TripletClipLoss()(img, txt, s, neg_features=neg_txt_in[:, None], neg_valid=caption_ok[:, None],
                            neg_image_features=neg_img_in, neg_image_valid=image_ok)
    out["loss"].backward()
    labels = lambda n: torch.arange(n)  # noqa: E731
    i2t = torch.cat([s * img @ txt.T, s * img @ neg_txt[:3].T], 1)  # T'3 is no candidate
    first = (F.cross_entropy(i2t, labels(4)) + F.cross_entropy(s * txt @ img.T, labels(4))) / 2
    rows = [0, 2]  # only the rows with a negative caption and a negative image
    i2t = torch.cat([s * neg_img[rows] @ neg_txt[rows].T, s * neg_img[rows] @ txt[rows].T], 1)
    second = (F.cross_entropy(i2t, labels(2)) + F.cross_entropy(s * neg_txt[rows] @ neg_img[rows].T, labels(2))) / 2
    assert out["negclip_positive"].item() == pytest.approx(first.item(), abs=1e-12)
    assert out["negclip_negative"].item() == pytest.approx(second.item(), abs=1e-12)
    assert out["loss"].item() == pytest.approx((first + second).item(), abs=1e-12)
    assert torch.all(neg_txt_in.grad[3] == 0) and torch.all(neg_img_in.grad[[1, 3]] == 0)  # they take no part
    assert neg_txt_in.grad[1].abs().sum() > 0  # row 1's caption is still a hard negative in the first half
    # no row with a negative image: the first half alone; no negative at all: plain CLIP
    none = torch.zeros(4, dtype=torch.bool)
    alone = TripletClipLoss()(img, txt, s, neg_features=neg_txt, neg_valid=caption_ok, neg_image_features=neg_img,
                              neg_image_valid=none)
    assert alone["negclip_negative"].item() == 0 and alone["loss"].item() == pytest.approx(first.item(), abs=1e-12)
    plain = TripletClipLoss()(img, txt, s, neg_features=neg_txt, neg_valid=none, neg_image_features=neg_img)
    assert plain["loss"].item() == pytest.approx(ClipLoss()(img, txt, s)["loss"].item(), abs=1e-12)


def _close_to_reference(got, want, tol):
    """Within ``tol`` relative to the reference tensor's largest magnitude (element-wise relative error is
    meaningless for gradient entries that cancel to near zero)."""
    want = torch.as_tensor(want, dtype=got.dtype)
    return bool((got - want).abs().max() <= tol * want.abs().max())


def test_triplet_matches_the_official_tripletclip_loss(shared_dir):
    path = shared_dir / "fixtures" / "tripletclip_loss" / "cases.pt"
    if not path.exists():
        pytest.skip("TripletCLIP fixtures absent")
    cases = torch.load(path, weights_only=True)
    assert {c["img"].dtype for c in cases} == {torch.float32, torch.float64}
    for case in cases:
        tol = 1e-5 if case["img"].dtype == torch.float32 else 1e-12
        name = (case["dtype"], case["batch"], case["dim"], case["logit_scale"])
        inputs = {k: case[k].clone().requires_grad_() for k in ("img", "text", "neg_img", "neg_text")}
        scale = torch.tensor(case["logit_scale"], dtype=case["img"].dtype, requires_grad=True)
        out = TripletClipLoss()(inputs["img"], inputs["text"], scale, neg_features=inputs["neg_text"][:, None],
                                neg_image_features=inputs["neg_img"])
        out["loss"].backward()
        assert _close_to_reference(out["loss"].detach(), case["loss"], tol), name
        assert _close_to_reference(out["negclip_positive"], case["negclip_pos_half"], tol), name
        assert out["accuracy"].item() == pytest.approx(case["accuracy"], abs=1e-9), name
        for key, tensor in inputs.items():
            assert _close_to_reference(tensor.grad, case[f"grad_{key}"], tol), (name, key)
        assert _close_to_reference(scale.grad, case["grad_logit_scale"], tol), name
