//! The operations of [`crate::CandleBackend`], one file per kind. Each public function
//! takes and returns candle tensors; CPU kernels live beside the composition used on other
//! devices.

/// Defines `fn $name(args) -> R { body }` with the body compiled once per instruction set
/// (for loops written as fixed-width lanes, or plain element loops, that the compiler
/// vectorises) and the widest this CPU has picked at run time. The body is pasted into each
/// target-feature function rather than called from it: closures take the instruction set
/// of the function they are written in, and a closure (or a function passed as one) that
/// the compiler does not inline would otherwise run as baseline SSE code. Winograd's
/// transforms did, for a seventh of a 512² VAE decode on a Zen 3.
macro_rules! per_isa {
    (
        $(#[$doc:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?
        $body:block
    ) => {
        $(#[$doc])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($($arg: $ty),*) $(-> $ret)? $body
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? $body
                if is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F.
                    return unsafe { avx512($($arg),*) };
                }
                if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has AVX2 and FMA.
                    return unsafe { avx2($($arg),*) };
                }
            }
            fn portable($($arg: $ty),*) $(-> $ret)? $body
            portable($($arg),*)
        }
    };
}

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
