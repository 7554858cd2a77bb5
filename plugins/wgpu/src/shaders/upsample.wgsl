// Nearest-neighbour x2 upsampling of [N, C, H, W]: each output pixel reads its source pixel.
// A dispatch covers output elements first..first+n; `x_base`/`y_base` are the elements the
// (possibly windowed) bindings begin at.

struct Params {
    n: u32,
    h: u32,
    w: u32,
    first: u32,
    x_base: u32,
    y_base: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let li_global = (wg.y * nwg.x + wg.x) * 256u + li;
    if (li_global >= p.n) {
        return;
    }
    let i = p.first + li_global;
    let ow = 2u * p.w;
    let plane = 4u * p.h * p.w;
    let nc = i / plane;
    let rem = i % plane;
    let oy = rem / ow;
    let ox = rem % ow;
    y[i - p.y_base] = x[(nc * p.h + oy / 2u) * p.w + ox / 2u - p.x_base];
}
