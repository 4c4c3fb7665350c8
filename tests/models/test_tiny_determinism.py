"""The tiny-model factory writes the same bytes every time: a rerun of `make demo` (which rebuilds them) must
resume, and resumes compare model identities (genemi.run_settings)."""

import pytest

from genemi.run_settings import file_identity


@pytest.mark.parametrize("name", ["sd_inpainting", "sd_t2i", "blip_itm", "grounding_dino", "sam"])
def test_two_saves_are_the_same_model(name, tmp_path):
    from genemi.models.tiny import TINY_BUILDERS

    import subprocess
    import sys

    first = TINY_BUILDERS[name](tmp_path / "a", 0)
    # the second save in another process: hash seeds (Python's and the Rust tokenizers') differ there
    subprocess.run([sys.executable, "-c", f"from genemi.models.tiny import TINY_BUILDERS; "
                    f"TINY_BUILDERS[{name!r}]({str(tmp_path / 'b')!r}, 0)"], check=True, capture_output=True)
    for key, path in first.items():
        other = tmp_path / "b" / path.relative_to(tmp_path / "a")
        assert file_identity(path) == file_identity(other), key


def test_bert_vocabulary_ids_are_unique_and_contiguous():
    from genemi.models.tiny.detection import bert_vocab

    vocab = bert_vocab()
    assert sorted(vocab.values()) == list(range(len(vocab)))
