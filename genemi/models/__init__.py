"""Model I/O: checkpoint reading, CLIP creation/loading, and tiny random models for tests and demos."""
