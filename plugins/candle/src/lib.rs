//! Candle backend.
