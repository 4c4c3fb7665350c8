"""bert-base-uncased WordPiece as the original Tag2Text used it (slow ``BertTokenizer`` of transformers 4.25,
lower-case, plus ``[DEC]`` (bos) and ``[ENC]`` appended to the vocab), from a user's ``vocab.txt``."""

from __future__ import annotations

import unicodedata
from pathlib import Path

from genemi.errors import CheckpointError

SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF
            or 0x2F800 <= cp <= 0x2FA1F)


def _clean(text: str) -> str:
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD:
            continue
        cat = unicodedata.category(ch)
        if ch in " \t\n\r" or cat == "Zs":
            out.append(" ")
        elif cat.startswith("C"):
            continue
        elif _is_cjk(cp):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    return "".join(out)


class Tag2TextTokenizer:
    def __init__(self, vocab_file: str | Path):
        try:
            tokens = Path(vocab_file).read_text(encoding="utf-8").split("\n")
        except OSError as e:
            raise CheckpointError(f"Tag2Text vocab {vocab_file}: cannot read ({e})") from e
        if tokens and tokens[-1] == "":
            tokens.pop()
        self.vocab = {t.rstrip("\r"): i for i, t in enumerate(tokens)}
        missing = [t for t in SPECIAL if t not in self.vocab]
        if missing:
            raise CheckpointError(f"Tag2Text vocab {vocab_file}: not a BERT WordPiece vocab (no {', '.join(missing)})")
        self.ids_to_tokens = {i: t for t, i in self.vocab.items()}
        self.bos_token_id = len(tokens)  # [DEC]
        self.enc_token_id = len(tokens) + 1  # [ENC]
        self.ids_to_tokens[self.bos_token_id], self.ids_to_tokens[self.enc_token_id] = "[DEC]", "[ENC]"
        self.pad_token_id, self.unk_token_id = self.vocab["[PAD]"], self.vocab["[UNK]"]
        self.cls_token_id, self.sep_token_id = self.vocab["[CLS]"], self.vocab["[SEP]"]
        self.special_ids = {self.vocab[t] for t in SPECIAL} | {self.bos_token_id, self.enc_token_id}

    def __len__(self) -> int:
        return len(self.ids_to_tokens)

    def _basic(self, text: str) -> list[str]:
        words = []
        for tok in _clean(text).strip().split():
            tok = "".join(c for c in unicodedata.normalize("NFD", tok.lower()) if unicodedata.category(c) != "Mn")
            cur = ""
            for ch in tok:
                if _is_punctuation(ch):
                    if cur:
                        words.append(cur)
                    words.append(ch)
                    cur = ""
                else:
                    cur += ch
            if cur:
                words.append(cur)
        return words

    def _wordpiece(self, word: str) -> list[int]:
        if len(word) > 100:
            return [self.unk_token_id]
        out, start = [], 0
        while start < len(word):
            end, piece = len(word), None
            while start < end:
                sub = word[start:end] if start == 0 else "##" + word[start:end]
                if sub in self.vocab:
                    piece = self.vocab[sub]
                    break
                end -= 1
            if piece is None:
                return [self.unk_token_id]
            out.append(piece)
            start = end
        return out

    def tokenize_ids(self, text: str) -> list[int]:
        return [i for w in self._basic(text) for i in self._wordpiece(w)]

    def encode(self, text: str, max_length: int | None = None, pad: bool = False) -> tuple[list[int], list[int]]:
        """([CLS] ids [SEP], attention mask), truncated / padded to ``max_length`` like ``padding='max_length',
        truncation=True``."""
        ids = self.tokenize_ids(text)
        if max_length is not None:
            ids = ids[:max_length - 2]
        ids = [self.cls_token_id] + ids + [self.sep_token_id]
        mask = [1] * len(ids)
        if pad and max_length is not None:
            ids, mask = ids + [self.pad_token_id] * (max_length - len(ids)), mask + [0] * (max_length - len(mask))
        return ids, mask

    def decode(self, ids) -> str:
        """``decode(ids, skip_special_tokens=True)`` with transformers 4.25's clean-up of spaces."""
        toks = [self.ids_to_tokens.get(int(i), "[UNK]") for i in ids if int(i) not in self.special_ids]
        text = " ".join(toks).replace(" ##", "").strip()
        for a, b in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                     (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
            text = text.replace(a, b)
        return text
