//! Textual-inversion embeddings as A1111 uses them: files in an `embeddings/` folder
//! ([`folder`]), each read by [`file`] into vectors that replace the token embeddings where
//! the prompt spells the file's name ([`database`] does the token-level matching the chunker
//! calls), and the `TI hashes` infotext field naming the ones a job used ([`infotext`]).

pub mod database;
pub mod file;
pub mod folder;
pub mod infotext;
pub mod width;

pub use database::EmbeddingDatabase;
pub use file::{read_embedding, split_ext, Embedding, EmbeddingFileKind, SHORT_HASH_LEN};
pub use folder::{
    embedding_files, load_embedding_file, load_embedding_sources, load_embeddings_folder,
    EmbeddingsCache,
};
pub use infotext::{check_ti_hashes, parse_ti_hashes, ti_hashes, TI_HASHES_KEY};
pub use width::{text_encoder_width, SD1_WIDTH};
