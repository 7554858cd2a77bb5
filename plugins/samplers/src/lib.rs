//! k-diffusion samplers, A1111's DDIM/DDIM CFG++/PLMS/UniPC/Restart/LCM and A1111's schedule types as
//! Easel plugins. Each sampler is one file with the same shape as its reference function
//! (k-diffusion's `sampling.py`, A1111's `sd_samplers_*`): a loop over σ calling the
//! denoiser. Each schedule is one file under [`schedules`].

pub mod brownian;
mod churn;
pub mod ddim;
pub mod dpm2;
pub mod dpm2_ancestral;
pub mod dpm_adaptive;
pub mod dpm_fast;
mod dpm_solver;
pub mod dpmpp_2m;
pub mod dpmpp_2m_sde;
pub mod dpmpp_2s_ancestral;
pub mod dpmpp_3m_sde;
pub mod dpmpp_sde;
pub mod euler;
pub mod euler_ancestral;
pub mod heun;
pub mod lcm;
pub mod lms;
mod math;
mod params;
pub mod plms;
pub mod restart;
pub mod schedules;
pub mod seed_sequence;
mod timesteps;
pub mod unipc;

pub use brownian::BrownianTreeNoise;
pub use churn::Churn;
pub use ddim::Ddim;
pub use dpm2::Dpm2;
pub use dpm2_ancestral::Dpm2Ancestral;
pub use dpm_adaptive::DpmAdaptive;
pub use dpm_fast::DpmFast;
pub use dpmpp_2m::DpmPp2m;
pub use dpmpp_2m_sde::{DpmPp2mSde, SolverType};
pub use dpmpp_2s_ancestral::DpmPp2sAncestral;
pub use dpmpp_3m_sde::DpmPp3mSde;
pub use dpmpp_sde::DpmPpSde;
pub use euler::Euler;
pub use euler_ancestral::EulerAncestral;
pub use heun::Heun;
pub use lcm::Lcm;
pub use lms::Lms;
pub use plms::Plms;
pub use restart::Restart;
pub use unipc::UniPc;

use easel_core::registry::{SamplerRegistry, SchedulerRegistry};
use std::sync::Arc;

/// Register every sampler this crate provides, in A1111's order, with A1111's aliases.
pub fn register_all(reg: &mut SamplerRegistry) {
    reg.register(Arc::new(DpmPp2m), &["k_dpmpp_2m"]);
    reg.register(Arc::new(DpmPpSde::default()), &["k_dpmpp_sde"]);
    reg.register(Arc::new(DpmPp2mSde::default()), &["k_dpmpp_2m_sde"]);
    reg.register(
        Arc::new(DpmPp2mSde {
            solver: SolverType::Heun,
            ..Default::default()
        }),
        &["k_dpmpp_2m_sde_heun"],
    );
    reg.register(Arc::new(DpmPp2sAncestral::default()), &["k_dpmpp_2s_a"]);
    reg.register(Arc::new(DpmPp3mSde::default()), &["k_dpmpp_3m_sde"]);
    reg.register(
        Arc::new(EulerAncestral::default()),
        &["k_euler_a", "k_euler_ancestral", "euler_ancestral"],
    );
    reg.register(Arc::new(Euler::default()), &["k_euler"]);
    reg.register(Arc::new(Lms::default()), &["k_lms"]);
    reg.register(Arc::new(Heun::default()), &["k_heun"]);
    reg.register(Arc::new(Dpm2::default()), &["k_dpm_2"]);
    reg.register(Arc::new(Dpm2Ancestral::default()), &["k_dpm_2_a"]);
    reg.register(Arc::new(DpmFast::default()), &["k_dpm_fast"]);
    reg.register(Arc::new(DpmAdaptive::default()), &["k_dpm_ad"]);
    reg.register(Arc::new(Restart::default()), &[]);
    reg.register(Arc::new(Ddim::default()), &[]);
    reg.register(Arc::new(Ddim::cfgpp()), &[]);
    reg.register(Arc::new(Plms), &[]);
    reg.register(Arc::new(UniPc::default()), &[]);
    reg.register(Arc::new(Lcm), &["k_lcm"]);
}

/// Register every schedule type, in A1111's order (`Automatic` first).
pub fn register_schedulers(reg: &mut SchedulerRegistry) {
    use schedules::*;
    reg.register(Arc::new(Automatic), &[]);
    reg.register(Arc::new(Uniform), &[]);
    reg.register(Arc::new(Karras::default()), &["ka"]);
    reg.register(Arc::new(Exponential::default()), &["exp"]);
    reg.register(Arc::new(Polyexponential::default()), &[]);
    reg.register(Arc::new(SgmUniform), &["SGMUniform"]);
    reg.register(Arc::new(KlOptimal::default()), &[]);
    reg.register(Arc::new(AlignYourSteps), &["ays"]);
    reg.register(Arc::new(Simple), &[]);
    reg.register(Arc::new(Normal), &[]);
    reg.register(Arc::new(DdimSchedule), &["ddim_uniform"]);
    reg.register(Arc::new(Beta::default()), &[]);
}
