"""The generation pipeline: stages that turn images into variation datasets, and their records."""
