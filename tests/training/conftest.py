"""Training fixtures built once per session on top of the shared ones."""

import pytest


@pytest.fixture(scope="session")
def triplets(shapes, tmp_path_factory):
    from tests.training.triplet_data import write_triplet_files

    return write_triplet_files(tmp_path_factory.mktemp("triplets"), shapes)
