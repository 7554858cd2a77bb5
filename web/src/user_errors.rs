//! What the page says when the browser or its GPU cannot run Easel: plain sentences for a
//! user (which browsers work, which limit is short), not the driver's internals.

/// The browser has no `navigator.gpu`.
pub const NO_WEBGPU: &str = "This browser has no WebGPU, which Easel needs to generate here. \
It works in Chrome and Edge 113 or newer on Windows, macOS and ChromeOS, in Chrome on Linux \
with chrome://flags/#enable-unsafe-webgpu turned on, in Safari 26 and in Firefox 141 or newer \
on Windows. If your browser is one of these, check that hardware acceleration is on in its \
settings.";

/// The message for a failure to open the GPU: the adapter's missing limit when that is the
/// cause, the no-WebGPU sentence when no adapter was found.
pub fn gpu_start_error(detail: &str) -> String {
    if let Some(at) = detail.find("its limit ") {
        let limit = &detail[at + "its limit ".len()..];
        return format!(
            "Your GPU (as this browser offers it) is too small for Easel: its limit {limit}. \
             Try another browser or GPU."
        );
    }
    if detail.contains("no wgpu adapter") {
        return format!(
            "This browser offers WebGPU but no GPU adapter for it ({}). {NO_WEBGPU}",
            detail
                .split_once('(')
                .and_then(|(_, r)| r.split_once(')'))
                .map(|(why, _)| why)
                .unwrap_or("none found")
        );
    }
    format!("WebGPU could not be started: {detail}")
}

/// A job's error as the user should read it: GPU memory exhaustion named as such.
pub fn job_error(detail: &str) -> String {
    let lower = detail.to_ascii_lowercase();
    if lower.contains("out of memory") || lower.contains("outofmemory") {
        return format!(
            "The GPU ran out of memory: try a smaller size or batch size, or close other tabs \
             that use the GPU. ({detail})"
        );
    }
    detail.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_limit_is_named() {
        let m = gpu_start_error(
            "backend: wgpu adapter `x` is unusable: its limit max_storage_buffer_binding_size is 1024, the kernels need at least 16777216",
        );
        assert!(m.contains("max_storage_buffer_binding_size is 1024"), "{m}");
        assert!(!m.contains("wgpu adapter"), "{m}");
        let m = gpu_start_error("backend: no wgpu adapter found (request failed); install ...");
        assert!(m.contains("request failed") && m.contains("Chrome"), "{m}");
        assert!(job_error("Buffer creation failed: Out of memory").starts_with("The GPU ran out"));
        assert_eq!(
            job_error("steps must be at least 1"),
            "steps must be at least 1"
        );
    }
}
