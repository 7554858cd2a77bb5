//! Model file formats.
pub mod tensor_store;
pub use tensor_store::{DType, TensorInfo, TensorStore};
