"""English text tools shared by the pipeline and the evaluation: parsing, vocabularies, inflection,
WordNet access and word-order perturbations."""
