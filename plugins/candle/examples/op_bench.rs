//! Times the backend's operations at the sizes of one SD1.5 UNet step at 512×512 with CFG
//! (batch 2): `cargo run --release -p easel-candle --example op_bench`.

use easel_candle::CandleBackend;
use easel_core::Backend;
use std::time::Instant;

fn random(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect()
}

fn time<T>(label: &str, reps: usize, mut f: impl FnMut() -> T) {
    f();
    let start = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(f());
    }
    let ms = start.elapsed().as_secs_f64() * 1e3 / reps as f64;
    println!("{label:<44} {ms:9.2} ms");
}

fn main() -> easel_core::Result<()> {
    let b = CandleBackend::cpu();
    println!("{}", b.name());
    let up = |shape: &[usize], seed| b.upload(&random(shape.iter().product(), seed), shape);
    let x = up(&[2, 320, 64, 64], 1)?;
    let w3 = up(&[320, 320, 3, 3], 2)?;
    let bias = up(&[320], 3)?;
    time("conv3x3 320->320 @64x64 (b2)", 3, || {
        b.conv2d(&x, &w3, Some(&bias), 1, 1).unwrap()
    });
    let w1 = up(&[320, 320], 4)?;
    time("linear 320->320 x8192", 5, || {
        b.linear(&b.nchw_to_nlc(&x).unwrap(), &w1, Some(&bias))
            .unwrap()
    });
    time("group_norm+silu 320@64x64", 10, || {
        b.group_norm(&x, 32, &bias, &bias, 1e-5, true).unwrap()
    });
    time("nchw_to_nlc 320@64x64", 10, || b.nchw_to_nlc(&x).unwrap());
    let t = b.nchw_to_nlc(&x)?;
    time("layer_norm 8192x320", 10, || {
        b.layer_norm(&t, &bias, &bias, 1e-5).unwrap()
    });
    let ff = up(&[2, 4096, 2560], 5)?;
    time("geglu 8192x2560", 5, || b.geglu(&ff).unwrap());
    let ctx = up(&[2, 77, 320], 6)?;
    time("self-attention 4096x4096 h8 d40 (b2)", 2, || {
        b.attention(&t, &t, &t, 8, false).unwrap()
    });
    time("cross-attention 4096x77 h8 d40 (b2)", 5, || {
        b.attention(&t, &ctx, &ctx, 8, false).unwrap()
    });
    time("add 320@64x64", 10, || b.add(&x, &x).unwrap());
    time("upsample2x 320@32x32->64", 10, || {
        b.upsample_nearest2x(&b.narrow(&x, 2, 0, 32).unwrap())
            .unwrap()
    });
    Ok(())
}
