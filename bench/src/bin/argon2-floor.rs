//! `argon2-floor [samples]`: the argon2id floor against keygate's verify, alone, to compare build options (opt-level,
//! target-cpu, allocator) without building the whole harness. Prints the medians in milliseconds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keygate_bench::{floor, median, median_f64};

#[tokio::main]
async fn main() {
    let samples = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(40);
    let figures = floor::measure(samples).await;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    println!(
        "floor {:.2} ms, keygate {:.2} ms (first {:.2} ms), allocating {:.2} ms, keygate/floor {:.3} (median of pairs), allocating/floor {:.3}",
        ms(median(&figures.floor)),
        ms(median(&figures.keygate)),
        ms(figures.first),
        ms(median(&figures.allocating)),
        median_f64(&figures.ratios),
        ms(median(&figures.allocating)) / ms(median(&figures.floor)),
    );
}
