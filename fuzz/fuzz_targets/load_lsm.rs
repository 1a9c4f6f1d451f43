//! Any bytes given to the `.lsm` loader either fail with an error or yield a model the
//! engine runs without reading out of bounds. Panics and sanitizer reports are the bugs.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lottery_sparse::crc32::crc32;
use lottery_sparse::{Engine, Layer, format};

fuzz_target!(|data: &[u8]| {
    check(data);
    // Most mutations die at the checksum. Fixing it up, as a careless hand-editor's tool
    // would, sends the same bytes on into the field-by-field validation.
    if data.len() >= 24 {
        let mut resealed = data.to_vec();
        let payload = (data.len() - 24) as u64;
        resealed[12..20].copy_from_slice(&payload.to_le_bytes());
        let crc = crc32(&resealed[24..]);
        resealed[20..24].copy_from_slice(&crc.to_le_bytes());
        check(&resealed);
    }
});

fn check(data: &[u8]) {
    let Ok(model) = format::from_bytes(data) else {
        return;
    };
    // A valid file may still describe a network too large to run quickly; the loader's job
    // ends at validity, and running giants would only slow the fuzzer down.
    let too_big = model.input_len() > 1 << 14
        || model.layers.iter().any(|l| {
            l.output_len() > 1 << 14
                || matches!(l, Layer::Conv(c) if c.height * c.width * c.weights.nnz() > 1 << 20)
        });
    if too_big {
        return;
    }
    let engine = Engine::new(model).expect("a model the loader accepts passes the engine's check");
    let n = engine.model().input_len();
    for batch in [1, 9] {
        let x: Vec<f32> = (0..batch * n).map(|i| (i % 7) as f32 - 3.0).collect();
        let y = engine.forward(&x, batch);
        assert_eq!(y.len(), batch * engine.model().classes());
    }
}
