"""Two CPU processes (gloo): gathered losses give the single-process gradients; DDP training runs."""

import math
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from genemi.training.losses import CeClipLoss, ClipLoss, LossConfig, TripletClipLoss


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _inputs():
    g = torch.Generator().manual_seed(0)
    img = F.normalize(torch.randn(6, 8, generator=g, dtype=torch.float64), dim=-1)
    txt = F.normalize(torch.randn(6, 8, generator=g, dtype=torch.float64), dim=-1)
    neg = F.normalize(torch.randn(6, 4, 8, generator=g, dtype=torch.float64), dim=-1)
    valid = torch.rand(6, 4, generator=g) > 0.3
    return img, txt, neg, valid


def _losses():
    return [ClipLoss(), CeClipLoss(LossConfig(name="ceclip"))]


def _grads(loss, img, txt, neg, valid):
    img, txt, neg = (t.clone().requires_grad_() for t in (img, txt, neg))
    out = loss(img, txt, torch.tensor(10.0, dtype=torch.float64), neg_features=neg, neg_valid=valid)
    out["loss"].backward()
    return out["loss"].detach(), img.grad, txt.grad, neg.grad, out.get("thresholds")


def _triplet_inputs():
    """Negative captions and images, with rows lacking one (pool pairs) on both ranks' slices."""
    g = torch.Generator().manual_seed(1)
    neg_txt, neg_img = (F.normalize(torch.randn(6, 8, generator=g, dtype=torch.float64), dim=-1) for _ in range(2))
    caption_ok = torch.tensor([True, True, False, True, True, False])
    image_ok = torch.tensor([True, False, False, True, True, False])
    return neg_txt, caption_ok, neg_img, image_ok


def _triplet_grads(img, txt, neg_txt, caption_ok, neg_img, image_ok):
    img, txt, neg_txt, neg_img = (t.clone().requires_grad_() for t in (img, txt, neg_txt, neg_img))
    out = TripletClipLoss()(img, txt, torch.tensor(10.0, dtype=torch.float64), neg_features=neg_txt[:, None],
                            neg_valid=caption_ok[:, None], neg_image_features=neg_img, neg_image_valid=image_ok)
    out["loss"].backward()
    return out["loss"].detach(), out["accuracy"], img.grad, txt.grad, neg_txt.grad, neg_img.grad


def _worker(rank, port, results):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    img, txt, neg, valid = _inputs()
    # unequal local batches (4 + 2) exercise the padded gather
    sl = slice(0, 4) if rank == 0 else slice(4, 6)
    for i, loss in enumerate(_losses()):
        results[(rank, i)] = _grads(loss, img[sl], txt[sl], neg[sl], valid[sl])
    results[(rank, "triplet")] = _triplet_grads(img[sl], txt[sl], *(t[sl] for t in _triplet_inputs()))
    dist.destroy_process_group()


def test_gathered_losses_match_single_process_with_local_gradients():
    img, txt, neg, valid = _inputs()
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(_worker, args=(_free_port(), results), nprocs=2, join=True)
    for i, loss in enumerate(_losses()):
        ref = _grads(loss, img, txt, neg, valid)
        r0, r1 = results[(0, i)], results[(1, i)]
        assert torch.allclose(r0[0], ref[0]) and torch.allclose(r1[0], ref[0])
        for j in (1, 2, 3):
            if ref[j] is None:  # ClipLoss does not use negatives
                assert r0[j] is None and r1[j] is None
                continue
            assert torch.allclose(torch.cat([r0[j], r1[j]]), ref[j], atol=1e-12)
        if ref[4] is not None:
            assert torch.allclose(r0[4], ref[4]) and torch.allclose(r1[4], ref[4])
    ref = _triplet_grads(img, txt, *_triplet_inputs())
    r0, r1 = results[(0, "triplet")], results[(1, "triplet")]
    for j in (0, 1):  # the global loss and accuracy on both ranks
        assert torch.allclose(r0[j], ref[j]) and torch.allclose(r1[j], ref[j])
    for j in (2, 3, 4, 5):  # each rank's gradients are its rows of the single-process ones
        assert torch.allclose(torch.cat([r0[j], r1[j]]), ref[j], atol=1e-12)


def _train_worker(rank, port, runs, results):
    """``fit`` each argument list of ``runs`` in turn (one process group, so the start-up is paid once)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank))
    from genemi.training import train
    from genemi.training.loop import fit

    torch.set_num_threads(1)
    for i, args in enumerate(runs):
        cfg = train.resolve_config(train.build_parser().parse_args(args))
        result = fit(cfg, progress=False)
        results[(rank, i)] = (result.steps, result.epoch_losses)
    dist.destroy_process_group()


def test_ddp_training_with_two_processes(tmp_path, shapes, tiny_clip, triplets):
    common = ["--clip-model", str(tiny_clip["config"]), "--pretrained", str(tiny_clip["openai_state_dict"]),
              "--image-root", str(shapes.images), "--batch-size", "2", "--epoch", "1", "--workers", "0",
              "--device", "cpu", "--lr", "1e-4"]  # fmt: skip
    ceclip = [*common, "--dataset-type", "text_negatives", "--dataset", str(shapes.negatives_jsonl), "--loss", "ceclip",
              "--save-path", str(tmp_path / "run")]  # fmt: skip
    # TripletCLIP with COCO pairs mixed in (rows without a negative on both ranks)
    triplet = [*common, "--dataset-type", "triplets", "--dataset", str(triplets.jsonl), "--loss", "triplet",
               "--coco-dataset", str(shapes.coco_json), "--coco-image_dir", str(shapes.images), "--mode", "allinone",
               "--save-path", str(tmp_path / "triplet")]  # fmt: skip
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(_train_worker, args=(_free_port(), [ceclip, triplet], results), nprocs=2, join=True)
    assert results[(0, 0)] == results[(1, 0)]  # same global loss on both ranks
    assert results[(0, 0)][0] == 3  # 12 pairs / (2 per rank x 2 ranks)
    assert (tmp_path / "run" / "model_0.pt").exists()
    assert results[(0, 1)] == results[(1, 1)] and results[(0, 1)][0] == 3  # 12 source images / (2 x 2)
    assert math.isfinite(results[(0, 1)][1][0]) and (tmp_path / "triplet" / "model_0.pt").exists()


def _spawn(fn, args, timeout):
    """Run ``fn(rank, *args)`` in two processes; fail (instead of hanging) if they are not done in ``timeout``."""
    import time

    ctx = mp.start_processes(fn, args=args, nprocs=2, join=False, start_method="spawn")
    deadline = time.monotonic() + timeout
    while not ctx.join(timeout=max(deadline - time.monotonic(), 0.1)):
        if time.monotonic() > deadline:
            for proc in ctx.processes:
                proc.kill()
            raise AssertionError(f"the two ranks did not finish within {timeout}s (a rank waiting in a collective)")


def test_ddp_webdataset_with_uneven_shards_runs_equal_steps_per_epoch(tmp_path, shapes, tiny_clip):
    from tests.training.wds_shards import write_shards

    image = next((shapes.images / "sources").iterdir()).read_bytes()
    pattern = write_shards(tmp_path / "shards", [5, 9, 2], image=image)  # 16 samples; any split is uneven
    args = [
        "--clip-model", str(tiny_clip["config"]), "--pretrained", str(tiny_clip["openai_state_dict"]),
        "--dataset-type", "webdataset", "--dataset", pattern, "--batch-size", "2", "--epoch", "2",
        "--save-path", str(tmp_path / "run"), "--workers", "0", "--device", "cpu", "--lr", "1e-4", "--log-every", "1",
    ]
    results = mp.Manager().dict()
    _spawn(_train_worker, (_free_port(), [args], results), timeout=120)
    first, second = results[(0, 0)], results[(1, 0)]
    assert first[0] == second[0] == 8  # ceil(16 / (2 per rank x 2 ranks)) = 4 steps, 2 epochs
    assert first[1] == second[1] and len(first[1]) == 2
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[1:]
    per_epoch = [sum(1 for r in rows if r.startswith(f"{e},")) for e in (0, 1)]
    assert per_epoch == [4, 4] and (tmp_path / "run" / "model_1.pt").exists()
