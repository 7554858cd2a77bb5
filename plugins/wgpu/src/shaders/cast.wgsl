// A stored weight (f16, or f16 packed in u32; `load_w` from the weight prelude, binding 1)
// widened to an f32 tensor, for operations that take activations.

struct Params {
    n: u32,
    x_off: u32,
    y_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if (i >= p.n) {
        return;
    }
    y[i + p.y_off] = load_w(i + p.x_off);
}
