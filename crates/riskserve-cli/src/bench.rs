//! `riskserve bench`: score (or, with the hidden `--explain`, explain) rows repeatedly after
//! loading and report throughput as JSON.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use riskserve_model::Predictor;
use riskserve_model::shap::Explainer;

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
    /// Time exact explanations (TreeSHAP, one row per call) instead of scoring; for
    /// scripts/bench_shap.sh.
    #[arg(long, hide = true)]
    pub explain: bool,
    /// With --explain: first write every input row's explanation to this CSV (per group, each
    /// feature's contribution then the bias), for the benchmark's check against shap.
    #[arg(long, hide = true, value_name = "FILE", requires = "explain")]
    pub explain_out: Option<PathBuf>,
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
    if args.explain {
        return explain(&args, &model, &rows.values, rows.count, load_started);
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
    let (scored, elapsed) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..args.threads)
            .map(|_| scope.spawn(|| score_for(&predictor, &rows.values, &batch, args.batch_size, warm_up, measure)))
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("a bench thread panicked"))
            .try_fold((0usize, Duration::ZERO), |(rows, longest), result| {
                result.map(|(scored, elapsed)| (rows + scored, longest.max(elapsed)))
            })
    })?;
    let seconds = elapsed.as_secs_f64();
    let rows_per_second = scored as f64 / seconds;
    eprintln!(
        "scored {scored} rows in {seconds:.2} s on {} thread(s), batches of {}: {rows_per_second:.0} rows/s",
        args.threads, args.batch_size
    );
    let (tree_nodes, tree_bytes) = predictor.tree_memory().unwrap_or((0, 0));
    let report = serde_json::json!({
        "rows_per_second": rows_per_second,
        "ns_per_row": 1e9 * args.threads as f64 / rows_per_second,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "rows_scored": scored,
        "seconds": seconds,
        "load_seconds": load_seconds,
        "format": format.name(),
        "tree_nodes": tree_nodes,
        "tree_bytes_per_node": if tree_nodes > 0 { tree_bytes as f64 / tree_nodes as f64 } else { 0.0 },
        "model": args.model.model.display().to_string(),
    });
    println!("{report}");
    Ok(())
}

/// Scores repeatedly on this thread for `warm_up`, then for `measure`: batches of `batch`, or,
/// with a batch size of 1, every input row in turn through the one-row path. Returns the rows
/// scored in the measured window and its measured length.
fn score_for(
    predictor: &Predictor,
    rows: &[f64],
    batch: &[f64],
    batch_size: usize,
    warm_up: Duration,
    measure: Duration,
) -> anyhow::Result<(usize, Duration)> {
    let width = predictor.num_inputs();
    let count = rows.len() / width.max(1);
    let values = predictor.num_values();
    let mut scratch = predictor.scratch();
    let mut out = vec![0.0; batch_size * values];
    let mut next_row = 0;
    let mut run = |length: Duration| -> anyhow::Result<(usize, Duration)> {
        let started = Instant::now();
        let mut scored = 0;
        while started.elapsed() < length {
            if batch_size == 1 {
                // Many one-row calls between clock reads.
                for _ in 0..64 {
                    let row = &rows[next_row * width..(next_row + 1) * width];
                    predictor.predict_row(row, &mut scratch, &mut out)?;
                    next_row = (next_row + 1) % count.max(1);
                    scored += 1;
                }
            } else {
                predictor.predict_batch(batch, &mut out, 1)?;
                scored += batch_size;
            }
        }
        Ok((scored, started.elapsed()))
    };
    run(warm_up)?;
    run(measure)
}

/// `--explain`: writes the explanations when asked, then explains rows one at a time (cycling
/// through the input) on each thread and reports the time per row.
fn explain(
    args: &BenchArgs,
    model: &riskserve_model::Model,
    rows: &[f64],
    count: usize,
    load_started: Instant,
) -> anyhow::Result<()> {
    let explainer = Explainer::new(model).context("cannot explain the model")?;
    let load_seconds = load_started.elapsed().as_secs_f64();
    let width = explainer.num_inputs();
    let values = explainer.num_groups() * (explainer.num_features() + 1);
    if let Some(path) = &args.explain_out {
        let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut file = std::io::BufWriter::new(file);
        let mut header = Vec::with_capacity(values);
        for group in 0..explainer.num_groups() {
            let prefix = if explainer.num_groups() > 1 { format!("{group}:") } else { String::new() };
            header.extend(explainer.feature_names().iter().map(|name| format!("{prefix}{name}")));
            header.push(format!("{prefix}bias"));
        }
        writeln!(file, "{}", header.join(","))?;
        let mut scratch = explainer.scratch();
        let mut out = vec![0.0; values];
        for (index, row) in rows.chunks(width.max(1)).take(count).enumerate() {
            explainer.explain_row(row, &mut scratch, &mut out).with_context(|| format!("row {}", index + 1))?;
            let cells: Vec<String> = out.iter().map(f64::to_string).collect();
            writeln!(file, "{}", cells.join(","))?;
        }
        file.flush()?;
    }
    let measure = Duration::from_secs_f64(args.seconds);
    let warm_up = Duration::from_secs_f64((args.seconds / 10.0).min(0.5));
    let explain_for = |length: Duration| -> anyhow::Result<(usize, Duration)> {
        let mut scratch = explainer.scratch();
        let mut out = vec![0.0; values];
        let mut next_row = 0;
        let mut explained = 0;
        let started = Instant::now();
        while started.elapsed() < length {
            for _ in 0..16 {
                let row = &rows[next_row * width..(next_row + 1) * width];
                explainer.explain_row(row, &mut scratch, &mut out)?;
                next_row = (next_row + 1) % count;
                explained += 1;
            }
        }
        Ok((explained, started.elapsed()))
    };
    let (explained, elapsed) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..args.threads)
            .map(|_| {
                scope.spawn(|| {
                    explain_for(warm_up)?;
                    explain_for(measure)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("a bench thread panicked"))
            .try_fold((0usize, Duration::ZERO), |(rows, longest), result| {
                result.map(|(explained, elapsed)| (rows + explained, longest.max(elapsed)))
            })
    })?;
    let seconds = elapsed.as_secs_f64();
    let rows_per_second = explained as f64 / seconds;
    eprintln!(
        "explained {explained} rows in {seconds:.2} s on {} thread(s): {rows_per_second:.0} rows/s",
        args.threads
    );
    let report = serde_json::json!({
        "rows_per_second": rows_per_second,
        "ns_per_row": 1e9 * args.threads as f64 / rows_per_second,
        "threads": args.threads,
        "rows_explained": explained,
        "seconds": seconds,
        "load_seconds": load_seconds,
        "format": model.source.name(),
        "model": args.model.model.display().to_string(),
    });
    println!("{report}");
    Ok(())
}
