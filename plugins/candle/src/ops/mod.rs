//! The operations of [`crate::CandleBackend`], one file per kind. Each public function
//! takes and returns candle tensors; CPU kernels live beside the composition used on other
//! devices.

pub mod activation;
pub mod attention;
pub mod conv;
pub mod cpu_cache;
pub mod cpu_kernel;
pub mod fast_math;
pub mod feed_forward;
pub mod fused_attention;
pub mod key_major_softmax;
pub mod layout;
pub mod linear;
pub mod norm;
pub mod pixel_shuffle;
pub mod softmax;
pub mod window;
pub mod winograd;
