"""Two CPU processes (gloo): gathered losses give the single-process gradients; DDP training runs."""

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from genemi.training.losses import CeClipLoss, ClipLoss, LossConfig


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


def _worker(rank, port, results):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    img, txt, neg, valid = _inputs()
    # unequal local batches (4 + 2) exercise the padded gather
    sl = slice(0, 4) if rank == 0 else slice(4, 6)
    for i, loss in enumerate(_losses()):
        results[(rank, i)] = _grads(loss, img[sl], txt[sl], neg[sl], valid[sl])
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


def _train_worker(rank, port, args, results):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank))
    from genemi.training import train
    from genemi.training.loop import fit

    torch.set_num_threads(1)
    cfg = train.resolve_config(train.build_parser().parse_args(args))
    result = fit(cfg, progress=False)
    results[rank] = (result.steps, result.epoch_losses)
    dist.destroy_process_group()


def test_ddp_training_with_two_processes(tmp_path, shapes, tiny_clip):
    args = [
        "--clip-model", str(tiny_clip["config"]), "--pretrained", str(tiny_clip["openai_state_dict"]),
        "--dataset-type", "text_negatives", "--dataset", str(shapes.negatives_jsonl),
        "--image-root", str(shapes.images), "--loss", "ceclip", "--batch-size", "2", "--epoch", "1",
        "--save-path", str(tmp_path / "run"), "--workers", "0", "--device", "cpu", "--lr", "1e-4",
    ]
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(_train_worker, args=(_free_port(), args, results), nprocs=2, join=True)
    assert results[0] == results[1]  # same global loss on both ranks
    assert results[0][0] == 3  # 12 pairs / (2 per rank x 2 ranks)
    assert (tmp_path / "run" / "model_0.pt").exists()


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
    _spawn(_train_worker, (_free_port(), args, results), timeout=120)
    assert results[0][0] == results[1][0] == 8  # ceil(16 / (2 per rank x 2 ranks)) = 4 steps, 2 epochs
    assert results[0][1] == results[1][1] and len(results[0][1]) == 2
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[1:]
    per_epoch = [sum(1 for r in rows if r.startswith(f"{e},")) for e in (0, 1)]
    assert per_epoch == [4, 4] and (tmp_path / "run" / "model_1.pt").exists()
