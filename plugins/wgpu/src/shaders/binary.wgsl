// Elementwise ops of two f32 tensors: a + b, a * b, and a + b broadcast per
// (image, channel) over the `inner` = H*W values of each plane (the UNet's time embedding).

struct Params {
    n: u32,
    op: u32,
    inner: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

const OP_ADD: u32 = 0u;
const OP_MUL: u32 = 1u;
const OP_ADD_CHANNEL: u32 = 2u;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if (i >= p.n) {
        return;
    }
    switch p.op {
        case OP_ADD: { y[i] = a[i] + b[i]; }
        case OP_MUL: { y[i] = a[i] * b[i]; }
        case OP_ADD_CHANNEL: { y[i] = a[i] + b[i / p.inner]; }
        default: {}
    }
}
