//! Model file formats: torch checkpoints (`.ckpt`, `.pt`; zip and legacy), safetensors, and the
//! common [`TensorStore`] view they all load into. [`open_tensor_store`] picks the reader.
pub mod ckpt;
pub mod flatten;
pub mod legacy_torch;
pub mod open;
pub mod pickle;
pub mod safetensors;
pub mod tensor_store;
pub mod value;
pub mod zip;

pub use open::{open_tensor_store, open_tensor_store_from, open_tensor_store_named};
pub use tensor_store::{DType, TensorInfo, TensorStore};
pub use value::{StorageRef, TensorRef, Value};
