use std::hint::black_box;
use std::time::Instant;

use crate::report::Report;

/// Flags of the `noop` scenario.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// How many empty operations to time.
    #[arg(long, default_value_t = 1_000_000)]
    ops: u64,
}

pub(crate) fn run(args: &Args) -> Report {
    let start = Instant::now();
    let mut sum = 0u64;
    for i in 0..args.ops {
        sum = black_box(sum.wrapping_add(i));
    }
    Report::new("noop", args.ops, start.elapsed()).with("checksum", sum)
}
