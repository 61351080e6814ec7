//! `riskserve bench`: score rows repeatedly after loading and report throughput as JSON.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use riskserve_model::Predictor;

use crate::ModelArgs;
use crate::rows;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Rows per call; 1 goes through the one-row path.
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
    /// Scoring threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// How long to measure, after a short warm-up.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.batch_size == 0 || args.threads == 0 {
        bail!("--batch-size and --threads must be at least 1");
    }
    if !(args.seconds.is_finite() && args.seconds > 0.0 && args.seconds <= 3600.0) {
        bail!("--seconds must be between 0 and 3600");
    }
    let load_started = Instant::now();
    let model = rows::load(&args.model)?;
    let format = model.source;
    let rows = rows::read_csv(&args.model.input, &model)?;
    if rows.count == 0 {
        bail!("the input {} has no rows", args.model.input.display());
    }
    let predictor = Predictor::new(model).context("cannot compile the model")?;
    let load_seconds = load_started.elapsed().as_secs_f64();
    let width = predictor.num_inputs();
    // A batch of exactly `batch_size` rows, cycling through the input.
    let batch: Vec<f64> = (0..args.batch_size)
        .flat_map(|index| rows.values[(index % rows.count) * width..][..width].iter().copied())
        .collect();
    let measure = Duration::from_secs_f64(args.seconds);
    let warm_up = Duration::from_secs_f64((args.seconds / 10.0).min(0.5));
    let scored: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..args.threads)
            .map(|_| scope.spawn(|| score_for(&predictor, &batch, args.batch_size, warm_up, measure)))
            .collect();
        handles.into_iter().map(|handle| handle.join().expect("a bench thread panicked")).sum::<anyhow::Result<usize>>()
    })?;
    let rows_per_second = scored as f64 / args.seconds;
    eprintln!(
        "scored {scored} rows in {:.2} s on {} thread(s), batches of {}: {:.0} rows/s",
        args.seconds, args.threads, args.batch_size, rows_per_second
    );
    let (tree_nodes, tree_bytes) = predictor.tree_memory().unwrap_or((0, 0));
    let report = serde_json::json!({
        "rows_per_second": rows_per_second,
        "ns_per_row": 1e9 * args.threads as f64 / rows_per_second,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "rows_scored": scored,
        "seconds": args.seconds,
        "load_seconds": load_seconds,
        "format": format.name(),
        "tree_nodes": tree_nodes,
        "tree_bytes_per_node": if tree_nodes > 0 { tree_bytes as f64 / tree_nodes as f64 } else { 0.0 },
        "model": args.model.model.display().to_string(),
    });
    println!("{report}");
    Ok(())
}

/// Scores `batch` repeatedly on this thread: `warm_up`, then `measure`; returns rows scored in
/// the measured window.
fn score_for(
    predictor: &Predictor,
    batch: &[f64],
    batch_size: usize,
    warm_up: Duration,
    measure: Duration,
) -> anyhow::Result<usize> {
    let width = predictor.num_inputs();
    let values = predictor.num_values();
    let mut scratch = predictor.scratch();
    let mut out = vec![0.0; batch_size * values];
    let mut run = |until: Instant| -> anyhow::Result<usize> {
        let mut scored = 0;
        while Instant::now() < until {
            if batch_size == 1 {
                // Many one-row calls between clock reads, cycling over distinct rows.
                for _ in 0..64 {
                    let row = &batch[(scored % (batch.len() / width.max(1)).max(1)) * width..][..width];
                    predictor.predict_row(row, &mut scratch, &mut out)?;
                    scored += 1;
                }
            } else {
                predictor.predict_batch(batch, &mut out, 1)?;
                scored += batch_size;
            }
        }
        Ok(scored)
    };
    run(Instant::now() + warm_up)?;
    run(Instant::now() + measure)
}
