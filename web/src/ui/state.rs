//! The page's reactive state, shared by every component through Leptos' context. Signals
//! hold plain data; the JS handles (the user's `File`s, the worker) live in thread-locals
//! beside it ([`picked`], [`super::worker_client`]).

use super::fields;
use leptos::prelude::*;
use serde_json::Value;

/// The model on the GPU (or the server's, in server mode).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    pub name: String,
    pub hash: String,
    pub vae: Option<String>,
}

/// Sampling progress of the running job.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Progress {
    pub step: u32,
    pub total: u32,
    pub batch: u32,
    pub batch_count: u32,
    /// `performance.now()` when the job started and when its first step ended.
    pub started_ms: f64,
    pub first_step_ms: f64,
    pub now_ms: f64,
}

/// A live preview: RGBA pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct Preview {
    pub rgba: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// One hypernetwork picked, with whether it is applied and its strength.
#[derive(Clone, Debug, PartialEq)]
pub struct HypernetChoice {
    pub name: String,
    pub enabled: bool,
    pub strength: f64,
}

/// An image made by a job (or restored from the history), with its PNG.
#[derive(Clone, Debug, PartialEq)]
pub struct GalleryItem {
    /// The history's key (0 until stored).
    pub key: u32,
    pub png: Vec<u8>,
    pub infotext: String,
    pub seed: u64,
    pub width: u32,
    pub height: u32,
    /// An object URL of the PNG for `<img>` and the download link.
    pub url: String,
}

/// Where Generate runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// This browser's GPU, in the worker.
    Browser,
    /// The `easel serve` that served the page, through `/sdapi/v1`.
    Server,
}

#[derive(Clone, Copy)]
pub struct AppState {
    /// The form as generation settings JSON (`seed` may be -1: random).
    pub form: RwSignal<Value>,
    /// Inputs whose text is not a valid value: (input id, message).
    pub unparsed: RwSignal<Vec<(String, String)>>,
    /// `data-state` of `<body>`: starting, ready, loading, loaded, generating, done,
    /// cancelled, filled, invalid, error (the browser tests wait on it).
    pub state: RwSignal<&'static str>,
    pub status: RwSignal<(String, bool)>,
    pub gpu: RwSignal<String>,
    pub model: RwSignal<Option<ModelInfo>>,
    /// Labels of the checkpoints found in a picked folder (file names, not paths).
    pub folder_models: RwSignal<Vec<String>>,
    pub selected_model: RwSignal<usize>,
    pub samplers: RwSignal<Vec<String>>,
    pub schedules: RwSignal<Vec<String>>,
    pub upscalers: RwSignal<Vec<String>>,
    pub hypernets: RwSignal<Vec<HypernetChoice>>,
    pub loras: RwSignal<Vec<String>>,
    pub embeddings: RwSignal<Vec<String>>,
    pub vae_approx: RwSignal<String>,
    pub preview_method: RwSignal<String>,
    pub progress: RwSignal<Progress>,
    pub preview: RwSignal<Option<Preview>>,
    /// The last job's images, shown beside the form.
    pub current: RwSignal<Vec<GalleryItem>>,
    /// Every image kept in the history, newest first.
    pub gallery: RwSignal<Vec<GalleryItem>>,
    /// The image open in the full-size viewer.
    pub viewer: RwSignal<Option<GalleryItem>>,
    /// The init image (name, object URL, width, height) of img2img.
    pub init_image: RwSignal<Option<(String, String, u32, u32)>>,
    /// Whether a mask was painted on the canvas or picked as a file.
    pub mask_name: RwSignal<Option<String>>,
    pub target: RwSignal<Target>,
    pub server_models: RwSignal<Vec<String>>,
    pub server_model: RwSignal<String>,
}

impl Default for AppState {
    fn default() -> Self {
        Self {
            form: RwSignal::new(fields::default_form()),
            unparsed: RwSignal::new(Vec::new()),
            state: RwSignal::new("starting"),
            status: RwSignal::new(("starting the GPU…".into(), false)),
            gpu: RwSignal::new("starting…".into()),
            model: RwSignal::new(None),
            folder_models: RwSignal::new(Vec::new()),
            selected_model: RwSignal::new(0),
            samplers: RwSignal::new(Vec::new()),
            schedules: RwSignal::new(Vec::new()),
            upscalers: RwSignal::new(Vec::new()),
            hypernets: RwSignal::new(Vec::new()),
            loras: RwSignal::new(Vec::new()),
            embeddings: RwSignal::new(Vec::new()),
            vae_approx: RwSignal::new(String::new()),
            preview_method: RwSignal::new("Approx cheap".into()),
            progress: RwSignal::new(Progress::default()),
            preview: RwSignal::new(None),
            current: RwSignal::new(Vec::new()),
            gallery: RwSignal::new(Vec::new()),
            viewer: RwSignal::new(None),
            init_image: RwSignal::new(None),
            mask_name: RwSignal::new(None),
            target: RwSignal::new(Target::Browser),
            server_models: RwSignal::new(Vec::new()),
            server_model: RwSignal::new(String::new()),
        }
    }
}

impl AppState {
    /// Whether a load or a job is running: file pickers, model choice and Generate wait.
    pub fn busy(&self) -> bool {
        matches!(self.state.get(), "starting" | "loading" | "generating")
    }

    pub fn say(&self, text: impl Into<String>) {
        self.status.set((text.into(), false));
    }

    pub fn fail(&self, text: impl Into<String>) {
        self.status.set((text.into(), true));
    }
}

pub fn use_state() -> AppState {
    expect_context::<AppState>()
}

/// The user's files as picked, kept to reload or re-apply them.
pub mod picked {
    use std::cell::RefCell;
    use web_sys::File;

    /// A checkpoint with its A1111 sidecars.
    #[derive(Clone)]
    pub struct ModelFiles {
        pub label: String,
        pub checkpoint: File,
        pub yaml: Option<File>,
        pub vae: Option<File>,
    }

    #[derive(Default)]
    pub struct Picked {
        pub folder_models: Vec<ModelFiles>,
        pub hypernets: Vec<File>,
        pub init_image: Option<Vec<u8>>,
        pub mask_file: Option<Vec<u8>>,
    }

    thread_local! {
        pub static PICKED: RefCell<Picked> = RefCell::new(Picked::default());
    }

    pub fn with<T>(f: impl FnOnce(&mut Picked) -> T) -> T {
        PICKED.with(|p| f(&mut p.borrow_mut()))
    }
}
