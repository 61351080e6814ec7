//! `riskserve compile`: load a model, run the compile step, and print what it chose (evaluator, kernel, memory, compile time) as JSON.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use riskserve_model::{EvaluatorChoice, Format, KernelChoice, Predictor, load_model};

#[derive(Debug, clap::Args)]
pub struct CompileArgs {
    /// The model file (XGBoost JSON or UBJSON, LightGBM text, ONNX, PMML).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// The model's format; detected from the content when omitted.
    #[arg(long, value_parser = ["xgboost-json", "xgboost-ubj", "lightgbm", "onnx", "pmml"])]
    pub format: Option<String>,
    /// Which tree evaluator to build: the compile step's own choice, the reference walk, or the quantised walk
    /// wherever it applies.
    #[arg(long, default_value = "auto", value_parser = ["auto", "reference", "quantised"])]
    pub evaluator: String,
    /// The quantised walk's one-row kernel: the fastest on the probe rows among those this CPU runs, or one by name
    /// (a kernel this CPU cannot run falls back to the widest one it can, and the reason says so).
    #[arg(long, default_value = "auto", value_parser = ["auto", "portable", "avx2", "avx512"])]
    pub kernel: String,
}

pub fn run(args: CompileArgs) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(&args.model).with_context(|| format!("cannot read the model {}", args.model.display()))?;
    let format = args.format.as_deref().map(|name| Format::from_name(name).expect("clap checked the format"));
    let choice = EvaluatorChoice::from_name(&args.evaluator).expect("clap checked the evaluator");
    let kernel = KernelChoice::from_name(&args.kernel).expect("clap checked the kernel");
    let load_started = Instant::now();
    let model =
        load_model(&bytes, format).with_context(|| format!("cannot load the model {}", args.model.display()))?;
    let load_micros = load_started.elapsed().as_micros() as u64;
    let source = model.source;
    let predictor = Predictor::with_kernel(model, choice, kernel).context("cannot compile the model")?;
    let Some(report) = predictor.compile_report() else {
        bail!(
            "the model is not a tree ensemble: there is nothing to compile (linear models and scorecards are scored as they are)"
        );
    };
    let mut answer = serde_json::to_value(report).context("cannot describe the compiled model")?;
    answer["model"] = args.model.display().to_string().into();
    answer["format"] = source.to_string().into();
    answer["load_micros"] = load_micros.into();
    // Written, not printed: a reader that stops early (`| head`) is then an error the caller ignores, not a panic.
    writeln!(std::io::stdout().lock(), "{}", serde_json::to_string_pretty(&answer)?)?;
    Ok(())
}
