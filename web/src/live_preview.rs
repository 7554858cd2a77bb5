//! The page's live preview by A1111's methods: the cheap linear approximation (core's, on
//! the host, every step), and A1111's VAE-approx network or TAESD's decoder when their
//! files were picked. The networks live outside the generation service, so a preview runs
//! on the GPU while a job holds the service: it is spawned from the step callback and runs
//! whenever the sampler waits for the GPU. One runs at a time; a step that finds one
//! running keeps the cheap preview.

use crate::blob_source::BlobSource;
use easel_core::formats::open_tensor_store_named;
use easel_core::nn::{TaesdDecoder, VaeApprox};
use easel_core::Result;
use easel_wgpu::WgpuBackend;
use js_sys::{Array, Function, Uint8ClampedArray};
use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;
use wasm_bindgen::JsValue;
use web_sys::File;

/// A1111's live preview methods ("Live preview method").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreviewMethod {
    /// `Approx cheap`: a fixed linear map of the latent, one pixel per latent cell.
    Cheap,
    /// `Approx NN`: A1111's VAE-approx network (`VAE-approx/model.pt`).
    ApproxNn,
    /// `TAESD`: TAESD's decoder, the image at full size.
    Taesd,
}

impl PreviewMethod {
    /// A1111's names (any case); anything else is the cheap method.
    pub fn parse(text: &str) -> Self {
        match text.trim().to_ascii_lowercase().as_str() {
            "approx nn" => Self::ApproxNn,
            "taesd" => Self::Taesd,
            _ => Self::Cheap,
        }
    }
}

#[derive(Default)]
struct Networks {
    backend: Option<WgpuBackend>,
    approx: Option<Rc<VaeApprox<WgpuBackend>>>,
    taesd: Option<Rc<TaesdDecoder<WgpuBackend>>>,
}

thread_local! {
    static NETWORKS: RefCell<Networks> = RefCell::new(Networks::default());
    static IN_FLIGHT: Cell<bool> = const { Cell::new(false) };
}

fn open(f: &File) -> Result<easel_core::formats::TensorStore> {
    open_tensor_store_named(&f.name(), BlobSource::of_file(f)?)
}

/// Loads the preview networks from `approx` (`model.pt`) and `taesd` (`taesd_decoder.pth`),
/// replacing those loaded before. Returns which are available.
pub fn set_networks(
    b: &WgpuBackend,
    approx: Option<&File>,
    taesd: Option<&File>,
) -> Result<(bool, bool)> {
    let approx = approx
        .map(|f| VaeApprox::from_store(b, &open(f)?, Path::new(&f.name())).map(Rc::new))
        .transpose()?;
    let taesd = taesd
        .map(|f| TaesdDecoder::from_store(b, &open(f)?, Path::new(&f.name())).map(Rc::new))
        .transpose()?;
    let available = (approx.is_some(), taesd.is_some());
    NETWORKS.with(|n| {
        *n.borrow_mut() = Networks {
            backend: Some(b.clone()),
            approx,
            taesd,
        }
    });
    Ok(available)
}

/// RGB bytes → RGBA for a canvas.
fn rgba(rgb: &[u8]) -> Vec<u8> {
    rgb.chunks(3)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect()
}

/// Starts a network preview of one latent `[4, h, w]` by `method` unless one is running or
/// the method's network was not picked; `done(rgba, width, height)` gets the image. Returns
/// whether one was started.
pub fn spawn(method: PreviewMethod, latent: Vec<f32>, h: usize, w: usize, done: Function) -> bool {
    if method == PreviewMethod::Cheap || IN_FLIGHT.with(|f| f.get()) {
        return false;
    }
    let (backend, approx, taesd) = NETWORKS.with(|n| {
        let n = n.borrow();
        (n.backend.clone(), n.approx.clone(), n.taesd.clone())
    });
    let Some(b) = backend else {
        return false;
    };
    type PreviewJob =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<(Vec<u8>, usize, usize)>>>>;
    let job: PreviewJob = match (method, approx, taesd) {
        (PreviewMethod::ApproxNn, Some(net), _) => Box::pin(async move {
            let rgb = net.preview_rgb(&b, &latent, h, w).await?;
            Ok((rgb, 2 * w, 2 * h))
        }),
        (PreviewMethod::Taesd, _, Some(net)) => Box::pin(async move {
            let rgb = net.decode_rgb(&b, &latent, h, w).await?;
            Ok((rgb, 8 * w, 8 * h))
        }),
        _ => return false,
    };
    IN_FLIGHT.with(|f| f.set(true));
    wasm_bindgen_futures::spawn_local(async move {
        let result = job.await;
        IN_FLIGHT.with(|f| f.set(false));
        // A preview that fails leaves the cheap one up; the job itself goes on.
        if let Ok((rgb, width, height)) = result {
            let data = Uint8ClampedArray::from(rgba(&rgb).as_slice());
            let args = Array::of3(
                &data,
                &JsValue::from(width as u32),
                &JsValue::from(height as u32),
            );
            let _ = done.apply(&JsValue::NULL, &args);
        }
    });
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_parse_a1111_names() {
        assert_eq!(PreviewMethod::parse("Approx NN"), PreviewMethod::ApproxNn);
        assert_eq!(PreviewMethod::parse("taesd"), PreviewMethod::Taesd);
        assert_eq!(PreviewMethod::parse("Approx cheap"), PreviewMethod::Cheap);
        assert_eq!(rgba(&[1, 2, 3]), vec![1, 2, 3, 255]);
    }
}
