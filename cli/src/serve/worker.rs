//! The generation thread: it owns the one [`GenerationService`] (model, VAE and
//! hypernetworks stay loaded between requests) and runs jobs one at a time, off the async
//! runtime. Handlers talk to it through a channel and hear back on a oneshot; progress and
//! the Interrupt/Skip flags are shared with the `progress`, `interrupt` and `skip` routes.

use crate::session::{service, SessionBackend};
use easel_core::image::{upscale, ImageUpscaler, RgbImage, UpscaleTarget, UpscalerRegistry};
use easel_core::nn::VaeApprox;
use easel_core::pipeline::CancelToken;
use easel_core::service::{
    Generated, GenerationInputs, GenerationService, GenerationSettings, StepProgress,
};
use easel_core::{Backend, Error, Result};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, OwnedMutexGuard};

/// What a handler asks of the generation thread.
pub enum Command {
    /// Run a job. `turn` is the queue slot: it is released when the job is done, so the
    /// next request starts only then, even if this one's client went away.
    Generate {
        settings: Box<GenerationSettings>,
        /// Init images and mask (img2img); empty for txt2img.
        inputs: Box<GenerationInputs>,
        reply: oneshot::Sender<JobOutcome>,
        turn: OwnedMutexGuard<()>,
    },
    /// Load `model` (name/title) with `vae` now (A1111's reload-checkpoint, or setting
    /// `sd_model_checkpoint`).
    Load {
        model: String,
        vae: String,
        reply: oneshot::Sender<Result<()>>,
        turn: OwnedMutexGuard<()>,
    },
    /// Upscale one image (A1111's Extras): `upscalers` are the first upscaler's name and,
    /// with a visibility, the second's; the reply is the image and the names used.
    Upscale {
        image: Box<RgbImage>,
        target: UpscaleTarget,
        upscalers: (String, Option<(String, f64)>),
        reply: oneshot::Sender<Result<RgbImage>>,
        turn: OwnedMutexGuard<()>,
    },
    /// Free the model (A1111's unload-checkpoint).
    Unload {
        reply: oneshot::Sender<()>,
        turn: OwnedMutexGuard<()>,
    },
}

/// A generation job's images (or error), and whether it was stopped for running past the
/// server's time limit.
pub struct JobOutcome {
    pub result: Result<Vec<Generated>>,
    pub timed_out: bool,
}

/// The live state of the job being run, for `GET progress`.
#[derive(Default)]
pub struct LiveProgress {
    pub job: String,
    pub job_timestamp: String,
    pub running: bool,
    pub started: Option<Instant>,
    pub batch: usize,
    pub batch_count: usize,
    pub step: usize,
    pub steps: usize,
    /// The first image's current latent and its `[channels, h/8, w/8]`.
    pub latent: Option<(Vec<f32>, [usize; 3])>,
    /// A1111's "Approx NN" preview of that latent as RGB bytes, width and height, made every
    /// [`PREVIEW_EVERY`] steps when `models/VAE-approx/model.pt` is there.
    pub preview: Option<(Vec<u8>, usize, usize)>,
}

/// How long the generation thread waits without a job before it returns the memory the
/// last one freed (see [`crate::allocator`]).
const IDLE_RELEASE: Duration = Duration::from_secs(2);

/// A1111's `show_progress_every_n_steps` default.
pub const PREVIEW_EVERY: usize = 10;

/// The preview network the server uses, when the models folder has one.
struct Previewer<B: Backend> {
    backend: B,
    net: VaeApprox<B>,
}

impl<B: Backend> Previewer<B> {
    fn load(backend: &B, models: &std::path::Path) -> Option<Self>
    where
        B: Clone,
    {
        match VaeApprox::from_models_folder(backend, models) {
            Ok(net) => net.map(|net| Self {
                backend: backend.clone(),
                net,
            }),
            Err(e) => {
                eprintln!("warning: live previews: {e}; using the cheap approximation");
                None
            }
        }
    }
}

impl LiveProgress {
    /// Fraction of the job done, as A1111 counts it (batches, then steps within one).
    pub fn fraction(&self) -> f64 {
        if !self.running || self.batch_count == 0 || self.steps == 0 {
            return 0.0;
        }
        let within = self.step as f64 / self.steps as f64;
        ((self.batch as f64 + within) / self.batch_count as f64).min(1.0)
    }
}

/// Handles the routes share with the generation thread.
#[derive(Clone)]
pub struct WorkerHandle {
    pub commands: mpsc::Sender<Command>,
    pub progress: Arc<Mutex<LiveProgress>>,
    pub cancel: CancelToken,
}

fn timestamp() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    secs.to_string()
}

/// Starts the generation thread; `make_backend` runs on it, so the backend never crosses
/// threads. `folders` are the models folder and the embeddings folder.
/// A job running longer than `job_time` is interrupted.
pub fn start<B, F>(
    make_backend: F,
    folders: (PathBuf, Option<PathBuf>),
    job_time: Option<Duration>,
) -> Result<WorkerHandle>
where
    B: SessionBackend,
    F: FnOnce() -> Result<B> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Command>();
    let progress = Arc::new(Mutex::new(LiveProgress::default()));
    let cancel = CancelToken::new();
    let (ready_tx, ready_rx) = mpsc::channel::<Result<()>>();
    let shared = progress.clone();
    let token = cancel.clone();
    std::thread::Builder::new()
        .name("easel-generate".into())
        .spawn(move || {
            let backend = match make_backend() {
                Ok(b) => {
                    let _ = ready_tx.send(Ok(()));
                    b
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let previewer = Previewer::load(&backend, &folders.0);
            let mut svc = service(backend, folders.0, folders.1);
            // After a job, free memory goes back to the system once no other job has
            // come for IDLE_RELEASE (at once after an unload).
            let mut idle_released = true;
            loop {
                let command = match rx.recv_timeout(IDLE_RELEASE) {
                    Ok(command) => command,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if !idle_released {
                            crate::allocator::release_free_memory();
                            idle_released = true;
                        }
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                };
                let unload = matches!(command, Command::Unload { .. });
                run_command(
                    &mut svc,
                    command,
                    &shared,
                    &token,
                    previewer.as_ref(),
                    job_time,
                );
                idle_released = unload;
                if unload {
                    crate::allocator::release_free_memory();
                }
            }
        })
        .map_err(|e| Error::Invalid(format!("cannot start the generation thread: {e}")))?;
    ready_rx
        .recv()
        .map_err(|_| Error::Invalid("the generation thread stopped while starting".into()))??;
    Ok(WorkerHandle {
        commands: tx,
        progress,
        cancel,
    })
}

fn lock(p: &Mutex<LiveProgress>) -> std::sync::MutexGuard<'_, LiveProgress> {
    // A panic while holding the lock leaves plain numbers behind: still usable.
    p.lock().unwrap_or_else(|e| e.into_inner())
}

fn run_command<B: SessionBackend>(
    svc: &mut GenerationService<B>,
    command: Command,
    progress: &Mutex<LiveProgress>,
    cancel: &CancelToken,
    previewer: Option<&Previewer<B>>,
    job_time: Option<Duration>,
) {
    match command {
        Command::Generate {
            settings,
            inputs,
            reply,
            turn,
        } => {
            cancel.reset();
            {
                let mut p = lock(progress);
                *p = LiveProgress {
                    job: if inputs.init_images.is_empty() {
                        "txt2img".into()
                    } else {
                        "img2img".into()
                    },
                    job_timestamp: timestamp(),
                    running: true,
                    started: Some(Instant::now()),
                    batch_count: settings.batch_count,
                    steps: settings.steps,
                    ..Default::default()
                };
            }
            let started = Instant::now();
            let mut timed_out = false;
            let mut on_step = |s: &StepProgress| {
                if job_time.is_some_and(|limit| started.elapsed() > limit) && !timed_out {
                    timed_out = true;
                    cancel.interrupt();
                }
                let per_image: usize = s.latent_shape.iter().product();
                // The network runs before the lock is taken, so `progress` never waits on it.
                let [_, h, w] = s.latent_shape;
                let preview = match previewer {
                    Some(pv)
                        if (s.step + 1).is_multiple_of(PREVIEW_EVERY)
                            && s.latent.len() >= per_image =>
                    {
                        easel_core::sampler::block_on(pv.net.preview_rgb(
                            &pv.backend,
                            &s.latent[..per_image],
                            h,
                            w,
                        ))
                        .ok()
                        .map(|rgb| (rgb, 2 * w, 2 * h))
                    }
                    _ => None,
                };
                let mut p = lock(progress);
                p.batch = s.batch;
                p.batch_count = s.batch_count;
                p.step = s.step + 1;
                p.steps = s.steps;
                if s.latent.len() >= per_image {
                    p.latent = Some((s.latent[..per_image].to_vec(), s.latent_shape));
                }
                if preview.is_some() {
                    p.preview = preview;
                }
            };
            // A panic in a job must not take the server down: it becomes that job's error.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                svc.generate_with_inputs_blocking(&settings, &inputs, &mut on_step, cancel)
            }))
            .unwrap_or_else(|_| Err(Error::Invalid("the generation failed unexpectedly".into())));
            *lock(progress) = LiveProgress::default();
            let _ = reply.send(JobOutcome { result, timed_out });
            drop(turn);
        }
        Command::Load {
            model,
            vae,
            reply,
            turn,
        } => {
            let _ = reply.send(svc.load_model(&model, &vae).map(|_| ()));
            drop(turn);
        }
        Command::Upscale {
            image,
            target,
            upscalers,
            reply,
            turn,
        } => {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                extras_upscale(svc.upscalers(), &image, target, &upscalers)
            }))
            .unwrap_or_else(|_| Err(Error::Invalid("the upscale failed unexpectedly".into())));
            let _ = reply.send(result);
            drop(turn);
        }
        Command::Unload { reply, turn } => {
            svc.unload_model();
            let _ = reply.send(());
            drop(turn);
        }
    }
}

/// "None" as an upscaler: the upscale loop then only resizes (Lanczos) to the target, as
/// A1111's `UpscalerNone` does.
struct NoUpscaler;

impl ImageUpscaler for NoUpscaler {
    fn name(&self) -> &str {
        "None"
    }
    fn native_scale(&self) -> u32 {
        1
    }
    fn upscale_once(&self, img: &RgbImage) -> Result<RgbImage> {
        Ok(img.clone())
    }
}

/// A1111's Extras upscale: the first upscaler, and with a visibility the second one blended
/// over it as PIL's `Image.blend` does (`a + v·(b − a)`, truncated).
fn extras_upscale(
    registry: &UpscalerRegistry,
    image: &RgbImage,
    target: UpscaleTarget,
    (first, second): &(String, Option<(String, f64)>),
) -> Result<RgbImage> {
    let run = |name: &str| -> Result<RgbImage> {
        match registry.get(name)? {
            Some(u) => upscale(image, target, u),
            None => upscale(image, target, &NoUpscaler),
        }
    };
    let out = run(first)?;
    let Some((name, visibility)) = second else {
        return Ok(out);
    };
    let other = run(name)?;
    if (other.width, other.height) != (out.width, out.height) {
        return Err(Error::Invalid(format!(
            "upscaler 2 made {}x{}, upscaler 1 {}x{}",
            other.width, other.height, out.width, out.height
        )));
    }
    let v = *visibility as f32;
    let data = out
        .data
        .iter()
        .zip(&other.data)
        .map(|(&a, &b)| (a as f32 + v * (b as f32 - a as f32)).clamp(0.0, 255.0) as u8)
        .collect();
    RgbImage::new(out.width, out.height, data)
}
