//! The generation service: one settings type and one "settings → images + infotext" path
//! shared by every front end (CLI, web page, HTTP API).

pub mod img2img_job;
pub mod networks;
#[allow(clippy::module_inception)]
pub mod service;
pub mod settings;

pub use img2img_job::GenerationInputs;
pub use networks::{NetworkProvider, PreparedNetworks, PreparedPatch, WeightPatchProvider};
pub use service::{Generated, GenerationService, StepProgress};
pub use settings::{GenerationSettings, NetworkSetting};
