//! A checkpoint with its sidecars, found in a models folder and loaded onto a backend.
pub mod files;
pub mod from_sources;
pub mod hash;
pub mod hashes;
pub mod ldm_yaml;
pub mod listing;
pub mod stable_diffusion;

pub use files::{
    check_plain_name, checkpoint_files, list_checkpoints, resolve_checkpoint,
    resolve_checkpoint_name, resolve_vae, walk_files, CheckpointFiles, VaeChoice,
};
pub use from_sources::CheckpointSources;
pub use hash::{
    legacy_model_hash, legacy_model_hash_of, safetensors_data_sha256_of, sha256_of, short_hash_of,
};
pub use hashes::{
    hash_file, hash_file_cached, sha256_file, short_hash_cached, FileHashes, HashCache,
};
pub use ldm_yaml::LdmYaml;
pub use listing::{list_folder, CheckpointEntry, UnetWeights};
pub use stable_diffusion::{ModelInfo, StableDiffusion};
