// Nearest-neighbour x2 upsampling of [N, C, H, W]: each output pixel reads its source pixel.

struct Params {
    n: u32,
    h: u32,
    w: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if (i >= p.n) {
        return;
    }
    let ow = 2u * p.w;
    let plane = 4u * p.h * p.w;
    let nc = i / plane;
    let rem = i % plane;
    let oy = rem / ow;
    let ox = rem % ow;
    y[i] = x[(nc * p.h + oy / 2u) * p.w + ox / 2u];
}
