"""Beam search of the original Tag2Text captioner (transformers 4.25.1 ``generate``, num_beams > 1, no sampling).

Scores are summed log-softmax values; a finished hypothesis is scored ``sum / length ** length_penalty``.
``length_rule='prompt'`` (transformers 4.25, the reference): length = the hypothesis incl. the prompt, EOS
excluded. ``length_rule='generated'`` (newer transformers, e.g. 4.49): length = generated tokens incl. EOS.
"""

from __future__ import annotations

from typing import Callable

import torch

LENGTH_RULES = ("prompt", "generated")


class _Hypotheses:
    def __init__(self, num_beams: int, length_penalty: float):
        self.num_beams, self.length_penalty = num_beams, length_penalty
        self.beams: list[tuple[float, torch.Tensor]] = []
        self.worst = 1e9

    def add(self, ids: torch.Tensor, sum_logprobs: float, length: int) -> None:
        score = sum_logprobs / (length ** self.length_penalty)
        if len(self.beams) < self.num_beams or score > self.worst:
            self.beams.append((score, ids))
            if len(self.beams) > self.num_beams:
                order = sorted((s, i) for i, (s, _) in enumerate(self.beams))
                del self.beams[order[0][1]]
                self.worst = order[1][0]
            else:
                self.worst = min(score, self.worst)

    def is_done(self, best_sum_logprobs: float, length: int) -> bool:
        if len(self.beams) < self.num_beams:
            return False
        return self.worst >= best_sum_logprobs / (length ** self.length_penalty)


@torch.no_grad()
def beam_search(step: Callable, prompt: torch.Tensor, *, num_beams: int = 3, max_length: int = 50,
                min_length: int = 10, eos_token_id: int = 102, pad_token_id: int = 0, length_penalty: float = 1.0,
                length_rule: str = "prompt") -> list[torch.Tensor]:
    """Best sequence per batch item (prompt included, EOS appended when shorter than ``max_length``).

    ``prompt``: (B, P) ids; ``step(input_ids (B*K, t), beam_index or None)`` -> next-token logits (B*K, V) of
    the last position, where ``beam_index`` (B*K,) says which previous row each row continues (for caches).
    """
    if length_rule not in LENGTH_RULES:
        raise ValueError(f"length_rule must be one of {LENGTH_RULES}, not {length_rule!r}")
    batch, prompt_len = prompt.shape
    k = num_beams
    ids = prompt.repeat_interleave(k, dim=0)
    beam_scores = torch.zeros(batch, k, dtype=torch.float32, device=ids.device)
    beam_scores[:, 1:] = -1e9
    beam_scores = beam_scores.view(-1)
    hyps = [_Hypotheses(k, length_penalty) for _ in range(batch)]
    done = [False] * batch
    beam_index = None
    gen = length_rule == "generated"
    while True:
        cur_len = ids.shape[1]
        logits = step(ids, beam_index).float()
        scores = torch.log_softmax(logits, dim=-1)
        if cur_len < min_length:
            scores[:, eos_token_id] = -float("inf")
        scores = scores + beam_scores[:, None]
        vocab = scores.shape[-1]
        top_scores, top_tokens = torch.topk(scores.view(batch, k * vocab), 2 * k, dim=1, largest=True, sorted=True)
        top_beams, top_tokens = top_tokens // vocab, top_tokens % vocab
        next_scores = torch.zeros(batch, k, device=ids.device)
        next_tokens = torch.full((batch, k), pad_token_id, dtype=torch.long, device=ids.device)
        next_beams = torch.zeros(batch, k, dtype=torch.long, device=ids.device)
        ts, tt, tb = top_scores.cpu().tolist(), top_tokens.cpu().tolist(), top_beams.cpu().tolist()
        for b in range(batch):
            if done[b]:
                next_beams[b] = b * k
                continue
            slot = 0
            for rank, (score, token, beam) in enumerate(zip(ts[b], tt[b], tb[b])):
                row = b * k + beam
                if token == eos_token_id:
                    if rank >= k:
                        continue
                    hyps[b].add(ids[row].clone(), score, cur_len + 1 - prompt_len if gen else cur_len)
                else:
                    next_scores[b, slot], next_tokens[b, slot], next_beams[b, slot] = score, token, row
                    slot += 1
                if slot == k:
                    break
            best = max(ts[b])
            done[b] = done[b] or hyps[b].is_done(best, cur_len + 1 - prompt_len if gen else cur_len)
        beam_scores = next_scores.view(-1)
        beam_index = next_beams.view(-1)
        ids = torch.cat([ids[beam_index], next_tokens.view(-1, 1)], dim=1)
        if all(done) or ids.shape[1] >= max_length:
            break
    out = []
    for b in range(batch):
        if not done[b]:
            for j in range(k):
                row = b * k + j
                hyps[b].add(ids[row], beam_scores[row].item(), ids.shape[1] - prompt_len if gen else ids.shape[1])
        best = sorted(hyps[b].beams, key=lambda sb: sb[0])[-1][1]  # ties: the later one, as 4.25
        if best.shape[0] < max_length:
            best = torch.cat([best, best.new_tensor([eos_token_id])])
        out.append(best)
    return out
