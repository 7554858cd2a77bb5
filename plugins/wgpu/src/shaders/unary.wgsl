// Elementwise maps of one f32 tensor: scale, SiLU, exact (erf) GELU, CLIP's quick-GELU,
// leaky ReLU (slope `alpha`; 0 is ReLU, what TAESD uses), and the torch activations a
// hypernetwork may name (easel_core::ElementwiseFn, defined in backend_host.rs), written
// so that no intermediate overflows: tanh through e^(-2|v|), softplus as torch's
// identity above 20, log-sigmoid in torch's stable form.
// Invocations cover the tensor over a 2-D grid (one dimension alone is limited to 65535
// workgroups). `x_off`/`y_off` place this dispatch's range in windowed bindings.

struct Params {
    n: u32,
    op: u32,
    alpha: f32,
    x_off: u32,
    y_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

const OP_SCALE: u32 = 0u;
const OP_SILU: u32 = 1u;
const OP_GELU: u32 = 2u;
const OP_QUICK_GELU: u32 = 3u;
const OP_LEAKY_RELU: u32 = 4u;
const OP_TANH: u32 = 5u;
const OP_SIGMOID: u32 = 6u;
const OP_ELU: u32 = 7u;
const OP_SELU: u32 = 8u;
const OP_HARDSWISH: u32 = 9u;
const OP_MISH: u32 = 10u;
const OP_RELU6: u32 = 11u;
const OP_HARDTANH: u32 = 12u;
const OP_HARDSIGMOID: u32 = 13u;
const OP_SOFTPLUS: u32 = 14u;
const OP_SOFTSIGN: u32 = 15u;
const OP_TANHSHRINK: u32 = 16u;
const OP_LOGSIGMOID: u32 = 17u;
const OP_HARDSHRINK: u32 = 18u;
const OP_SOFTSHRINK: u32 = 19u;

// erf with |error| < 1.5e-7 (Abramowitz & Stegun 7.1.26); WGSL has no erf.
fn erf_approx(v: f32) -> f32 {
    let a = abs(v);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let r = 1.0 - poly * exp(-a * a);
    return select(r, -r, v < 0.0);
}

fn tanh_stable(v: f32) -> f32 {
    let e = exp(-2.0 * abs(v));
    let t = (1.0 - e) / (1.0 + e);
    return select(t, -t, v < 0.0);
}

fn softplus(v: f32) -> f32 {
    return select(log(1.0 + exp(v)), v, v > 20.0);
}

fn gelu(v: f32) -> f32 {
    return 0.5 * v * (1.0 + erf_approx(v * 0.70710678118654752));
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if (i >= p.n) {
        return;
    }
    let v = x[i + p.x_off];
    var r = v;
    switch p.op {
        case OP_SCALE: { r = v * p.alpha; }
        case OP_SILU: { r = v / (1.0 + exp(-v)); }
        case OP_GELU: { r = gelu(v); }
        case OP_QUICK_GELU: { r = v / (1.0 + exp(-1.702 * v)); }
        case OP_LEAKY_RELU: { r = select(v * p.alpha, v, v > 0.0); }
        case OP_TANH: { r = tanh_stable(v); }
        case OP_SIGMOID: { r = 1.0 / (1.0 + exp(-v)); }
        case OP_ELU: { r = select(exp(v) - 1.0, v, v > 0.0); }
        case OP_SELU: { r = 1.050701 * select(1.6732632 * (exp(v) - 1.0), v, v > 0.0); }
        case OP_HARDSWISH: { r = v * clamp(v + 3.0, 0.0, 6.0) / 6.0; }
        case OP_MISH: { r = v * tanh_stable(softplus(v)); }
        case OP_RELU6: { r = clamp(v, 0.0, 6.0); }
        case OP_HARDTANH: { r = clamp(v, -1.0, 1.0); }
        case OP_HARDSIGMOID: { r = clamp(v + 3.0, 0.0, 6.0) / 6.0; }
        case OP_SOFTPLUS: { r = softplus(v); }
        case OP_SOFTSIGN: { r = v / (1.0 + abs(v)); }
        case OP_TANHSHRINK: { r = v - tanh_stable(v); }
        case OP_LOGSIGMOID: { r = min(v, 0.0) - log(1.0 + exp(-abs(v))); }
        case OP_HARDSHRINK: { r = select(0.0, v, abs(v) > 0.5); }
        case OP_SOFTSHRINK: { r = select(select(0.0, v + 0.5, v < -0.5), v - 0.5, v > 0.5); }
        default: {}
    }
    y[i + p.y_off] = r;
}
