// GEGLU: x: [rows, 2h] -> y: [rows, h] with y = x[:, :h] * gelu(x[:, h:]) (exact GELU).
// A dispatch covers whole rows; the offsets place them in windowed bindings.

struct Params {
    n: u32,
    half_width: u32,
    x_off: u32,
    y_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

// erf with |error| < 1.5e-7 (Abramowitz & Stegun 7.1.26); WGSL has no erf.
fn erf_approx(v: f32) -> f32 {
    let a = abs(v);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let r = 1.0 - poly * exp(-a * a);
    return select(r, -r, v < 0.0);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if (i >= p.n) {
        return;
    }
    let row = i / p.half_width;
    let col = i % p.half_width;
    let base = row * 2u * p.half_width + p.x_off;
    let g = x[base + p.half_width + col];
    y[i + p.y_off] = x[base + col] * 0.5 * g * (1.0 + erf_approx(g * 0.70710678118654752));
}
