//! DPM++ 2M, k-diffusion `sample_dpmpp_2m`: second-order multistep DPM-Solver++, reusing
//! the previous step's denoised prediction. A1111 defaults it to Karras.

use crate::math::lincomb;
use easel_core::backend::LocalBoxFuture;
use easel_core::sampler::{SampleContext, Sampler};
use easel_core::Result;

pub struct DpmPp2m;

impl Sampler for DpmPp2m {
    fn name(&self) -> &str {
        "dpmpp_2m"
    }
    fn label(&self) -> &str {
        "DPM++ 2M"
    }
    fn default_scheduler(&self) -> &str {
        "karras"
    }
    fn sample<'a>(
        &'a self,
        mut x: Vec<f32>,
        sigmas: &'a [f32],
        ctx: SampleContext<'a>,
    ) -> LocalBoxFuture<'a, Result<Vec<f32>>> {
        Box::pin(async move {
            let total = sigmas.len().saturating_sub(1);
            let mut old_denoised: Option<Vec<f32>> = None;
            for i in 0..total {
                let denoised = ctx.denoiser.denoise(&x, sigmas[i]).await?;
                // t = −ln σ; σ = 0 gives t = +∞ and the update collapses to `denoised`.
                let (t, t_next) = (-sigmas[i].ln(), -sigmas[i + 1].ln());
                let h = t_next - t;
                let ratio = (-t_next).exp() / (-t).exp();
                let gain = -(-h).exp_m1();
                match &old_denoised {
                    Some(old) if sigmas[i + 1] != 0.0 => {
                        let h_last = t - (-sigmas[i - 1].ln());
                        let r = h_last / h;
                        let mixed =
                            lincomb(1.0 + 1.0 / (2.0 * r), &denoised, -(1.0 / (2.0 * r)), old);
                        x = lincomb(ratio, &x, gain, &mixed);
                    }
                    _ => x = lincomb(ratio, &x, gain, &denoised),
                }
                (ctx.on_step)(i, total, &x, &denoised);
                old_denoised = Some(denoised);
            }
            Ok(x)
        })
    }
}
