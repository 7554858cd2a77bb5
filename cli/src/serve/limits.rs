//! What one API request may ask of the server. The pipeline's own limits (`generate`'s:
//! sides up to 2048, batches up to 64, 1000 steps) fit a person at their own machine; a
//! server shares one generation thread among every client, so each request gets tighter
//! bounds, checked before it waits in the queue, and a job is stopped (A1111's Interrupt:
//! the images made so far are returned) once it has run for `--max-job-seconds`.
//!
//! The defaults are the maxima of A1111's own UI sliders (steps 150, sides 2048, batch size
//! 8, batch count 100), so every request A1111's page can send is accepted.

use super::ApiError;
use easel_core::service::GenerationSettings;
use std::time::Duration;

#[derive(clap::Args, Clone, Debug)]
pub struct RequestLimits {
    /// Most sampling steps a request may ask for (each pass; hires second pass too).
    #[arg(long = "max-steps", default_value_t = 150)]
    pub max_steps: usize,
    /// Largest image side a request may ask for, in pixels (also hires fix's target and an
    /// Extras upscale's result).
    #[arg(long = "max-size", default_value_t = 2048)]
    pub max_size: usize,
    /// Most images in one batch (`batch_size`).
    #[arg(long = "max-batch-size", default_value_t = 8)]
    pub max_batch_size: usize,
    /// Most batches in one request (`n_iter`).
    #[arg(long = "max-batch-count", default_value_t = 100)]
    pub max_batch_count: usize,
    /// A job running longer than this is interrupted and answers with the images done so
    /// far; 0 = no limit.
    #[arg(long = "max-job-seconds", default_value_t = 3600)]
    pub max_job_seconds: u64,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            max_steps: 150,
            max_size: 2048,
            max_batch_size: 8,
            max_batch_count: 100,
            max_job_seconds: 3600,
        }
    }
}

fn over(field: &str, value: impl std::fmt::Display, limit: usize, flag: &str) -> ApiError {
    ApiError::field(
        field,
        format!("{field} {value} is over this server's limit of {limit} (easel serve {flag})"),
    )
}

impl RequestLimits {
    /// How long a job may run, when limited.
    pub fn job_time(&self) -> Option<Duration> {
        (self.max_job_seconds > 0).then(|| Duration::from_secs(self.max_job_seconds))
    }

    /// Refuses settings beyond the limits with a 422 naming the request field.
    pub fn check(&self, s: &GenerationSettings) -> Result<(), ApiError> {
        // (request field, value, limit, flag); the hires steps only when hires fix is on.
        let hires_steps = if s.enable_hr {
            s.hr_second_pass_steps
        } else {
            0
        };
        let counts = [
            ("steps", s.steps, self.max_steps, "--max-steps"),
            ("width", s.width, self.max_size, "--max-size"),
            ("height", s.height, self.max_size, "--max-size"),
            (
                "batch_size",
                s.batch_size,
                self.max_batch_size,
                "--max-batch-size",
            ),
            (
                "n_iter",
                s.batch_count,
                self.max_batch_count,
                "--max-batch-count",
            ),
            (
                "hr_second_pass_steps",
                hires_steps,
                self.max_steps,
                "--max-steps",
            ),
        ];
        if let Some(&(field, v, limit, flag)) = counts.iter().find(|c| c.1 > c.2) {
            return Err(over(field, v, limit, flag));
        }
        if s.enable_hr {
            let (w, h) = hires_target(s);
            if w.max(h) > self.max_size as f64 {
                return Err(over(
                    "hr_scale",
                    format!("{} (a {w:.0}x{h:.0} image)", s.hr_scale),
                    self.max_size,
                    "--max-size",
                ));
            }
        }
        Ok(())
    }

    /// Refuses an Extras upscale whose result would be larger than `--max-size`.
    pub fn check_upscale(&self, field: &str, width: f64, height: f64) -> Result<(), ApiError> {
        if !(width.is_finite() && height.is_finite()) || width.max(height) > self.max_size as f64 {
            return Err(over(
                field,
                format!("(a {width:.0}x{height:.0} result)"),
                self.max_size,
                "--max-size",
            ));
        }
        Ok(())
    }
}

/// Hires fix's second-pass size as A1111 derives it: both resize sides, one of them (the
/// other kept in proportion), or the first pass scaled by `hr_scale`.
fn hires_target(s: &GenerationSettings) -> (f64, f64) {
    let (w, h) = (s.width as f64, s.height as f64);
    let (x, y) = (s.hr_resize_x as f64, s.hr_resize_y as f64);
    match (s.hr_resize_x, s.hr_resize_y) {
        (0, 0) => (w * s.hr_scale, h * s.hr_scale),
        (_, 0) => (x, x * h / w.max(1.0)),
        (0, _) => (y * w / h.max(1.0), y),
        _ => (x, y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a1111_slider_maxima_pass_and_one_more_is_refused_by_field() {
        let l = RequestLimits::default();
        let mut s = GenerationSettings {
            steps: 150,
            width: 2048,
            height: 2048,
            batch_size: 8,
            batch_count: 100,
            ..Default::default()
        };
        l.check(&s).unwrap();
        for (field, change) in [
            (
                "steps",
                (|s: &mut GenerationSettings| s.steps = 151) as fn(&mut _),
            ),
            ("width", |s| s.width = 2049),
            ("batch_size", |s| s.batch_size = 9),
            ("n_iter", |s| s.batch_count = 101),
        ] {
            let mut t = s.clone();
            change(&mut t);
            let e = l.check(&t).unwrap_err();
            let body = e.body.to_string();
            assert!(body.contains(field) && body.contains("limit"), "{body}");
        }
        s.width = 1024;
        s.height = 1024;
        s.enable_hr = true;
        s.hr_scale = 2.0;
        l.check(&s).unwrap();
        s.hr_scale = 2.5;
        assert!(l.check(&s).is_err());
        s.hr_resize_x = 2048;
        assert!(l.check(&s).is_ok(), "resize_x 2048 keeps 1:1 at 2048");
    }
}
