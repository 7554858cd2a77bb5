//! Torch-compatible noise generators.
