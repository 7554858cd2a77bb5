// attention.wgsl's declarations for Swin window attention (SwinIR): two more inputs, the
// relative position bias [H, L, L] shared by every window and the shifted-window mask
// [nW, L, L] (window b takes mask[b mod nW]; `windows` = nW, 0 without a mask, the
// binding then being a placeholder), added to the scaled scores in SwinIR's order. Both
// are bound whole. Queries and keys are the same L tokens of a window, so L = lk; `qi`
// counts from the dispatch's first query q0, `img` from its first window img0.

@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> mask: array<f32>;
@group(0) @binding(6) var<storage, read_write> o: array<f32>;

fn add_score_bias(s: f32, img: u32, head: u32, qi: u32, kj: u32) -> f32 {
    // Rows past the dispatch's queries are computed and never stored.
    if (qi >= p.lq) {
        return s;
    }
    let l = p.lk;
    let row = p.q0 + qi;
    var t = s + bias[(head * l + row) * l + kj];
    if (p.windows != 0u) {
        t += mask[(((p.img0 + img) % p.windows) * l + row) * l + kj];
    }
    return t;
}
