"""``stanza`` caption parser: Stanford's stanza with its constituency parser (optional; models read from disk).

Needs ``pip install stanza`` and its English models in a local folder (``stanza_dir``, the folder
``stanza.download("en", model_dir=...)`` fills on a machine with internet); nothing is ever downloaded.
Noun-phrase chunks are the lowest NP constituents; ``dep``/``head`` of the tokens are placeholders
(``""`` and the token itself): the caption rewriting rules use parts of speech, tags and lemmas only.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

from genemi.errors import BackendUnavailable, ConfigError
from genemi.text.parsing import Chunk, ParsedCaption, Token

PROCESSORS = "tokenize,pos,lemma,constituency"  # stanza adds mwt itself where the English models need it


def _import_stanza():
    try:
        import stanza
    except ImportError as exc:
        raise BackendUnavailable("--caption-parser stanza needs the stanza package: pip install stanza") from exc
    return stanza


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class StanzaParser:
    name = "stanza"

    def __init__(self, config, context=None):
        self.config, self.context = config, context
        self._nlp = None

    def _folder(self) -> Path:
        if not self.config.stanza_dir:
            raise ConfigError("--caption-parser stanza needs --stanza-dir, the folder with stanza's English models")
        folder = Path(self.config.stanza_dir).expanduser()
        if not folder.is_dir():
            raise ConfigError(f"--stanza-dir {self.config.stanza_dir}: no such folder")
        if not (folder / "resources.json").is_file() or not (folder / "en").is_dir():
            raise ConfigError(f"--stanza-dir {self.config.stanza_dir} holds no stanza English models "
                              "(resources.json and en/ expected; stanza.download('en', model_dir=...) fills it "
                              "where there is internet)")
        return folder

    def check(self) -> None:
        """stanza is importable and the model folder looks like a stanza_resources folder with English."""
        _import_stanza()
        self._folder()

    def load(self) -> None:
        if self._nlp is not None:
            return
        stanza, folder = _import_stanza(), self._folder()
        device = str(getattr(self.context, "device", "cpu") or "cpu")
        gpu = device.startswith("cuda")
        try:
            self._nlp = stanza.Pipeline(lang="en", dir=str(folder), processors=PROCESSORS, download_method=None,
                                        use_gpu=gpu, logging_level="WARN", **({"device": device} if gpu else {}))
        except Exception as exc:
            message = f"stanza cannot load its English models from {folder}: {_first_line(exc)}"
            raise BackendUnavailable(message) from exc

    def offload(self) -> None:
        """Drop the pipeline (stanza has no single module to move); the next parse loads it again."""
        if self._nlp is None:
            return
        self._nlp = None
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def parse(self, texts: Sequence[str]) -> list[ParsedCaption]:
        self.load()
        stanza = _import_stanza()
        todo = [i for i, t in enumerate(texts) if t.strip()]
        out = [ParsedCaption(t, (), ()) for t in texts]
        if todo:
            docs = self._nlp([stanza.Document([], text=texts[i]) for i in todo])  # a list: stanza's bulk mode
            for i, doc in zip(todo, docs):
                out[i] = from_stanza(doc, texts[i])
        return out


def _lowest_noun_phrases(tree) -> list[tuple[int, int]]:
    """Word spans ``[start, end)`` of the NP constituents that contain no other NP, left to right."""
    spans: list[tuple[int, int]] = []

    def visit(node, start: int) -> tuple[int, bool]:
        if not node.children:
            return start + 1, False
        end, inner_np = start, False
        for child in node.children:
            end, child_np = visit(child, end)
            inner_np |= child_np
        is_np = str(node.label).split("-")[0] == "NP"
        if is_np and not inner_np:
            spans.append((start, end))
        return end, inner_np or is_np

    visit(tree, 0)
    return spans


def from_stanza(doc, text: str) -> ParsedCaption:
    """A stanza Document (tokenize, pos, lemma, constituency) as a :class:`ParsedCaption`.

    One token per stanza token; a multi-word token ("cannot") takes the annotation of its noun, else of its
    last word. Whitespace comes from the tokens' character offsets in ``text``.
    """
    tokens: list[Token] = []
    chunks: list[Chunk] = []
    offsets: list[tuple[int, int]] = []
    for sentence in doc.sentences:
        word_token: list[int] = []  # sentence word index -> caption token index
        for tok in sentence.tokens:
            i = len(tokens)
            words = list(tok.words)
            word = next((w for w in reversed(words) if w.upos in ("NOUN", "PROPN")), words[-1])
            word_token.extend([i] * len(words))
            lemma = (word.lemma or tok.text).lower()
            tokens.append(Token(tok.text, "", word.upos or "X", word.xpos or "", "", i, lemma))
            offsets.append((tok.start_char, tok.end_char))
        tree = getattr(sentence, "constituency", None)
        if tree is None:
            continue
        spans = _lowest_noun_phrases(tree)
        if spans and spans[-1][1] > len(word_token):  # leaves and words disagree: no chunks for this sentence
            continue
        for a, b in spans:
            start, end = word_token[a], word_token[b - 1] + 1
            root = next((k for k in range(end - 1, start - 1, -1) if tokens[k].pos in ("NOUN", "PROPN")), end - 1)
            chunks.append(Chunk(start, end, root))
    for k, (_, stop) in enumerate(offsets):
        nxt = offsets[k + 1][0] if k + 1 < len(offsets) else len(text)
        ws = text[stop:nxt] if stop is not None and nxt is not None else " "
        tokens[k] = replace(tokens[k], ws=ws if not ws.strip() else " ")
    return ParsedCaption(text, tuple(tokens), tuple(chunks))
