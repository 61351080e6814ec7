//! The compile step for tree ensembles: chooses an evaluator per model, checks it against the reference walk on probe rows, and reports what it chose.
//!
//! Two evaluators exist: the reference walk (`forest.rs`: thresholds compared as floats, the semantics every other
//! evaluator must reproduce bit for bit) and the quantised walk (`quantised.rs`: thresholds as ranks, rows as bin
//! indexes, `u8` or `u16`). The quantised walk is exact by construction; before it is accepted it must also give
//! bit-identical margins to the reference on deterministic probe rows, one row at a time and in blocks. The probe
//! rows take, per feature, sampled thresholds exactly and one ulp either side, NaN, signed zeros, infinities,
//! subnormals and the extremes of the precision. If they ever differ the reference is kept and the report says why.
//!
//! The quantised one-row walk also gets a kernel (`kernel.rs`): AVX-512 or AVX2 gathers where this CPU has them
//! (detected at run time), else the portable scalar walk. Verification runs the kernel chosen, so a model is only
//! ever served by code that matched the reference on this CPU.

use std::time::Instant;

use serde::Serialize;

use crate::forest::{Float, Forest, ROW_BLOCK};
use crate::ir::{Precision, TreeEnsemble};
use crate::kernel::{Kernel, KernelChoice};
use crate::quantised::{Bin, Cuts, QuantisedForest};

/// Which tree evaluator [`crate::Predictor::with_evaluator`] should build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EvaluatorChoice {
    /// The quantised walk where it applies and should pay, else the reference walk.
    #[default]
    Auto,
    /// The reference walk (floats compared at every split).
    Reference,
    /// The quantised walk wherever it applies (categorical splits, very wide models and pre-order trees of more than
    /// 65,534 leaves keep the reference).
    Quantised,
}

impl EvaluatorChoice {
    /// Parses `auto`, `reference` or `quantised`.
    pub fn from_name(name: &str) -> Option<EvaluatorChoice> {
        match name {
            "auto" => Some(EvaluatorChoice::Auto),
            "reference" => Some(EvaluatorChoice::Reference),
            "quantised" => Some(EvaluatorChoice::Quantised),
            _ => None,
        }
    }
}

/// What the compile step chose for a tree ensemble, and what it costs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompileReport {
    /// `reference`, `quantised-u8` or `quantised-u16`.
    pub evaluator: &'static str,
    /// Why that evaluator.
    pub reason: String,
    /// The one-row walk's instruction set: `portable`, `avx2` or `avx512` (`portable` for the reference walk).
    pub kernel: Kernel,
    /// How that kernel walks complete-layout trees for one row: `scalar`, `gather` or `lines` (see
    /// `QuantisedForest::one_row_walk`).
    pub one_row_walk: &'static str,
    /// When the compile step chose the kernel itself among several: each kernel's best time per probe row here.
    pub kernel_timings: Vec<KernelTiming>,
    /// How batches walk: `blocks` (a block of rows walks each tree together) or `lines` (the AVX-512 line kernel,
    /// two rows at a time; where it walks every tree and the probe blocks timed it faster).
    pub batch_walk: &'static str,
    /// `f32` (XGBoost, ONNX) or `f64` (LightGBM).
    pub precision: &'static str,
    pub trees: usize,
    /// Trees in the complete (heap) layout; the others are in the pre-order layout.
    pub complete_trees: usize,
    /// Nodes of the source trees.
    pub source_nodes: usize,
    /// Resident bytes of the chosen evaluator (trees, leaves, and for quantised walks the cuts).
    pub resident_bytes: usize,
    pub bytes_per_node: f64,
    /// Most distinct thresholds of one feature (0 when not collected).
    pub max_thresholds_per_feature: usize,
    /// Probe rows on which the chosen evaluator matched the reference (0 for the reference itself).
    pub verified_rows: usize,
    /// Wall time of the whole step: both compilations, the probe rows and their verification.
    pub compile_micros: u64,
}

/// How long one kernel took per probe row, at compile time, on this CPU.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KernelTiming {
    pub kernel: Kernel,
    pub nanos_per_row: f64,
}

/// Bin buffers a quantised walk writes a row's (or a block's) bins into.
#[derive(Debug, Default, Clone)]
pub struct BinScratch {
    narrow: Vec<u8>,
    wide: Vec<u16>,
}

/// A compiled tree ensemble behind the evaluator the compile step chose.
#[derive(Debug)]
pub enum TreeEvaluator<T> {
    Reference(Forest<T>),
    QuantisedU8(QuantisedForest<T, u8>),
    QuantisedU16(QuantisedForest<T, u16>),
}

impl<T: Float> TreeEvaluator<T> {
    pub fn num_outputs(&self) -> usize {
        match self {
            TreeEvaluator::Reference(forest) => forest.num_outputs(),
            TreeEvaluator::QuantisedU8(forest) => forest.num_outputs(),
            TreeEvaluator::QuantisedU16(forest) => forest.num_outputs(),
        }
    }

    pub fn num_trees(&self) -> usize {
        match self {
            TreeEvaluator::Reference(forest) => forest.num_trees(),
            TreeEvaluator::QuantisedU8(forest) => forest.num_trees(),
            TreeEvaluator::QuantisedU16(forest) => forest.num_trees(),
        }
    }

    pub fn source_nodes(&self) -> usize {
        match self {
            TreeEvaluator::Reference(forest) => forest.source_nodes(),
            TreeEvaluator::QuantisedU8(forest) => forest.source_nodes(),
            TreeEvaluator::QuantisedU16(forest) => forest.source_nodes(),
        }
    }

    pub fn resident_bytes(&self) -> usize {
        match self {
            TreeEvaluator::Reference(forest) => forest.resident_bytes(),
            TreeEvaluator::QuantisedU8(forest) => forest.resident_bytes(),
            TreeEvaluator::QuantisedU16(forest) => forest.resident_bytes(),
        }
    }

    fn complete_trees(&self) -> usize {
        match self {
            TreeEvaluator::Reference(forest) => forest.complete_trees(),
            TreeEvaluator::QuantisedU8(forest) => forest.complete_trees(),
            TreeEvaluator::QuantisedU16(forest) => forest.complete_trees(),
        }
    }

    fn kernel(&self) -> Kernel {
        match self {
            TreeEvaluator::Reference(_) => Kernel::Portable,
            TreeEvaluator::QuantisedU8(forest) => forest.kernel(),
            TreeEvaluator::QuantisedU16(forest) => forest.kernel(),
        }
    }

    /// Switches a quantised walk's one-row kernel (see [`QuantisedForest::use_kernel`]); the reference has none.
    pub fn use_kernel(&mut self, kernel: Kernel) {
        match self {
            TreeEvaluator::Reference(_) => {}
            TreeEvaluator::QuantisedU8(forest) => forest.use_kernel(kernel),
            TreeEvaluator::QuantisedU16(forest) => forest.use_kernel(kernel),
        }
    }

    /// Drops what the kernels not chosen built (see [`QuantisedForest::release_unused`]).
    fn release_unused(&mut self) {
        match self {
            TreeEvaluator::Reference(_) => {}
            TreeEvaluator::QuantisedU8(forest) => forest.release_unused(),
            TreeEvaluator::QuantisedU16(forest) => forest.release_unused(),
        }
    }

    fn lines_walk_every_tree(&self) -> bool {
        match self {
            TreeEvaluator::Reference(_) => false,
            TreeEvaluator::QuantisedU8(forest) => forest.lines_walk_every_tree(),
            TreeEvaluator::QuantisedU16(forest) => forest.lines_walk_every_tree(),
        }
    }

    fn can_batch_by_lines(&self) -> bool {
        match self {
            TreeEvaluator::Reference(_) => false,
            TreeEvaluator::QuantisedU8(forest) => forest.can_batch_by_lines(),
            TreeEvaluator::QuantisedU16(forest) => forest.can_batch_by_lines(),
        }
    }

    fn set_batch_by_lines(&mut self, by_lines: bool) {
        match self {
            TreeEvaluator::Reference(_) => {}
            TreeEvaluator::QuantisedU8(forest) => forest.set_batch_by_lines(by_lines),
            TreeEvaluator::QuantisedU16(forest) => forest.set_batch_by_lines(by_lines),
        }
    }

    fn batch_walk(&self) -> &'static str {
        match self {
            TreeEvaluator::Reference(_) => "blocks",
            TreeEvaluator::QuantisedU8(forest) => forest.batch_walk(),
            TreeEvaluator::QuantisedU16(forest) => forest.batch_walk(),
        }
    }

    fn one_row_walk(&self) -> &'static str {
        match self {
            TreeEvaluator::Reference(_) => "scalar",
            TreeEvaluator::QuantisedU8(forest) => forest.one_row_walk(),
            TreeEvaluator::QuantisedU16(forest) => forest.one_row_walk(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            TreeEvaluator::Reference(_) => "reference",
            TreeEvaluator::QuantisedU8(_) => "quantised-u8",
            TreeEvaluator::QuantisedU16(_) => "quantised-u16",
        }
    }

    /// Bin buffers for `rows` rows at once (1 for the one-row path, [`ROW_BLOCK`] for blocks).
    pub fn bin_scratch(&self, rows: usize) -> BinScratch {
        match self {
            TreeEvaluator::Reference(_) => BinScratch::default(),
            TreeEvaluator::QuantisedU8(forest) => {
                BinScratch { narrow: vec![0; rows * forest.row_bins()], wide: Vec::new() }
            }
            TreeEvaluator::QuantisedU16(forest) => {
                BinScratch { narrow: Vec::new(), wide: vec![0; rows * forest.row_bins()] }
            }
        }
    }

    /// The margin of one row; `bins` came from [`TreeEvaluator::bin_scratch`], `leaf_values` holds one value per
    /// tree.
    #[inline]
    pub fn margin_one(&self, features: &[T], bins: &mut BinScratch, margin: &mut [T], leaf_values: &mut [T]) {
        match self {
            TreeEvaluator::Reference(forest) => forest.margin_one(features, margin, leaf_values),
            TreeEvaluator::QuantisedU8(forest) => forest.margin_one(features, &mut bins.narrow, margin, leaf_values),
            TreeEvaluator::QuantisedU16(forest) => forest.margin_one(features, &mut bins.wide, margin, leaf_values),
        }
    }

    /// Margins of a block of at most [`ROW_BLOCK`] rows; `bins` came from `bin_scratch(ROW_BLOCK)`.
    #[inline]
    pub fn margin_block(&self, features: &[T], width: usize, count: usize, bins: &mut BinScratch, margins: &mut [T]) {
        match self {
            TreeEvaluator::Reference(forest) => forest.margin_block(features, width, count, margins),
            TreeEvaluator::QuantisedU8(forest) => {
                forest.margin_block(features, width, count, &mut bins.narrow, margins)
            }
            TreeEvaluator::QuantisedU16(forest) => forest.margin_block(features, width, count, &mut bins.wide, margins),
        }
    }
}

/// What the compile step needs of a float beyond [`Float`]: neighbours, bits, and the values that trip evaluators.
pub trait Probe: Float {
    /// NaN, signed zeros, infinities, subnormals, the extremes, and values near common thresholds.
    const SPECIALS: &'static [Self];
    const NAME: &'static str;
    fn up(self) -> Self;
    fn down(self) -> Self;
    fn bits(self) -> u64;
}

impl Probe for f32 {
    const SPECIALS: &'static [f32] = &[
        f32::NAN,
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        1e-40,
        -1e-40,
        f32::MIN_POSITIVE,
        f32::MAX,
        f32::MIN,
        1e30,
        -1e30,
        0.5,
        1.0,
        -1.0,
    ];
    const NAME: &'static str = "f32";
    fn up(self) -> f32 {
        self.next_up()
    }
    fn down(self) -> f32 {
        self.next_down()
    }
    fn bits(self) -> u64 {
        u64::from(self.to_bits())
    }
}

impl Probe for f64 {
    const SPECIALS: &'static [f64] = &[
        f64::NAN,
        0.0,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        5e-324,
        -5e-324,
        1e-310,
        f64::MIN_POSITIVE,
        f64::MAX,
        f64::MIN,
        1e300,
        -1e300,
        1e-35,
        -1e-35,
        0.5,
        1.0,
        -1.0,
    ];
    const NAME: &'static str = "f64";
    fn up(self) -> f64 {
        self.next_up()
    }
    fn down(self) -> f64 {
        self.next_down()
    }
    fn bits(self) -> u64 {
        self.to_bits()
    }
}

/// Probe rows: two full blocks and a partial one, so that every lane shape of both walks runs.
const PROBE_ROWS: usize = 2 * ROW_BLOCK + 11;
/// Thresholds sampled per feature for the probe rows (each exactly and one ulp either side).
const PROBED_CUTS: usize = 64;

/// Compiles an ensemble with the evaluator `choice` asks for (see [`EvaluatorChoice`]) and, for the quantised walk,
/// the one-row kernel `kernel` resolves to on this CPU.
pub fn compile_trees<T: Probe>(
    ensemble: &TreeEnsemble,
    choice: EvaluatorChoice,
    kernel: KernelChoice,
) -> (TreeEvaluator<T>, CompileReport) {
    let started = Instant::now();
    let reference = Forest::<T>::compile(ensemble);
    let mut verified_rows = 0;
    let mut widest = 0;
    let mut kernel_timings = Vec::new();
    let (evaluator, reason) = match choice {
        EvaluatorChoice::Reference => (TreeEvaluator::Reference(reference), "asked for".to_string()),
        EvaluatorChoice::Auto | EvaluatorChoice::Quantised => match quantise::<T>(ensemble, choice) {
            Err(why) => (TreeEvaluator::Reference(reference), why),
            Ok((mut candidate, probes, width)) => {
                widest = width;
                let kernel_reason;
                (kernel_reason, kernel_timings) = choose_kernel(&mut candidate, kernel, &probes, ensemble.num_features);
                match verify(&reference, &candidate, &probes, ensemble.num_features) {
                    Ok(rows) => {
                        verified_rows = rows;
                        let why = format!(
                            "no categorical split, at most {width} distinct thresholds per feature; matched the \
                             reference walk on {rows} probe rows; {kernel_reason}"
                        );
                        (candidate, why)
                    }
                    Err(difference) => (
                        TreeEvaluator::Reference(reference),
                        format!(
                            "the quantised walk differed from the reference walk ({difference}); kept the reference"
                        ),
                    ),
                }
            }
        },
    };
    let source_nodes = evaluator.source_nodes();
    let resident_bytes = evaluator.resident_bytes();
    let report = CompileReport {
        evaluator: evaluator.name(),
        kernel: evaluator.kernel(),
        one_row_walk: evaluator.one_row_walk(),
        kernel_timings,
        batch_walk: evaluator.batch_walk(),
        reason,
        precision: T::NAME,
        trees: evaluator.num_trees(),
        complete_trees: evaluator.complete_trees(),
        source_nodes,
        resident_bytes,
        bytes_per_node: resident_bytes as f64 / source_nodes.max(1) as f64,
        max_thresholds_per_feature: widest,
        verified_rows,
        compile_micros: started.elapsed().as_micros() as u64,
    };
    (evaluator, report)
}

/// The quantised candidate, its probe rows and the most thresholds of one feature; or why the reference stays.
fn quantise<T: Probe>(
    ensemble: &TreeEnsemble,
    choice: EvaluatorChoice,
) -> Result<(TreeEvaluator<T>, Vec<T>, usize), String> {
    debug_assert_eq!(T::NAME == "f32", ensemble.precision == Precision::F32);
    let cuts = Cuts::<T>::collect(ensemble)?;
    let widest = cuts.widest();
    if choice == EvaluatorChoice::Auto {
        // A row pays for its bins once (a binary search per feature read) and saves on every split it passes:
        // worth it when the walks take more steps than the searches do.
        let walk_steps: usize = ensemble.trees.iter().map(|tree| tree.depth()).sum();
        let search_steps: usize = (0..ensemble.num_features)
            .map(|feature| cuts.of(feature).len())
            .filter(|cuts| *cuts > 0)
            .map(|cuts| 1 + (usize::BITS - cuts.leading_zeros()) as usize)
            .sum();
        if walk_steps < search_steps {
            return Err(format!(
                "a row walks at most {walk_steps} splits, fewer than the {search_steps} search steps that \
                 quantising it would cost"
            ));
        }
    }
    let probes = probe_rows(&cuts, ensemble.num_features);
    // Narrow bins when every feature's thresholds and every pre-order tree's leaves fit them.
    let narrow =
        if widest <= u8::CAPACITY { QuantisedForest::<T, u8>::compile(ensemble, cuts.clone()).ok() } else { None };
    let candidate = match narrow {
        Some(forest) => TreeEvaluator::QuantisedU8(forest),
        None => TreeEvaluator::QuantisedU16(QuantisedForest::compile(ensemble, cuts)?),
    };
    Ok((candidate, probes, widest))
}

/// Rounds of timing each kernel on the probe rows, alternating; the fastest round of each counts.
const TIMING_ROUNDS: usize = 5;
/// How much faster than the expected winner another kernel must be to be chosen instead.
const MARGIN: f64 = 0.1;
/// Probe rows timed per round (the random ones, after the all-NaN and all-zero rows), so that timing costs a few
/// milliseconds even for large models.
const TIMED_ROWS: std::ops::Range<usize> = 2..34;

/// Sets the quantised candidate's one-row kernel: the one asked for (or the widest this CPU runs below it), or for
/// [`KernelChoice::Auto`], of the kernels this CPU runs, the one that scores the probe rows fastest here, timed in
/// alternating rounds (the line kernel, or else the portable one, unless another is clearly faster). Returns why,
/// and the timings.
fn choose_kernel<T: Probe>(
    candidate: &mut TreeEvaluator<T>,
    choice: KernelChoice,
    probes: &[T],
    width: usize,
) -> (String, Vec<KernelTiming>) {
    let available = Kernel::available();
    if choice != KernelChoice::Auto || available.len() == 1 {
        let (kernel, note) = Kernel::resolve(choice);
        candidate.use_kernel(kernel);
        let why = match note {
            Some(note) => note,
            None if choice == KernelChoice::Auto => format!("{} is the only kernel this CPU runs", kernel.name()),
            None => format!("the {} kernel, asked for", kernel.name()),
        };
        return (why + &choose_batch_walk(candidate, probes, width.max(1)), Vec::new());
    }
    let width = width.max(1);
    let timed = &probes[TIMED_ROWS.start * width..(TIMED_ROWS.end * width).min(probes.len())];
    let rows = timed.len() / width;
    let mut bins = candidate.bin_scratch(1);
    let mut margin = vec![T::ZERO; candidate.num_outputs()];
    let mut leaf_values = vec![T::ZERO; candidate.num_trees()];
    let mut best = vec![f64::INFINITY; available.len()];
    for _ in 0..TIMING_ROUNDS {
        for (kernel, best) in available.iter().zip(&mut best) {
            candidate.use_kernel(*kernel);
            let started = Instant::now();
            for row in timed.chunks(width) {
                candidate.margin_one(row, &mut bins, &mut margin, &mut leaf_values);
            }
            std::hint::black_box(&margin);
            *best = best.min(started.elapsed().as_nanos() as f64 / rows.max(1) as f64);
        }
    }
    // Timings on a busy machine are noisy: the kernel expected to win (the line kernel where it walks every tree,
    // else the portable one) is only replaced by one at least MARGIN faster.
    let preferred = available
        .iter()
        .position(|kernel| {
            candidate.use_kernel(*kernel);
            candidate.lines_walk_every_tree()
        })
        .unwrap_or(0);
    let fastest = (0..available.len()).min_by(|a, b| best[*a].total_cmp(&best[*b])).expect("one kernel at least");
    let chosen = if best[fastest] < best[preferred] * (1.0 - MARGIN) { fastest } else { preferred };
    candidate.use_kernel(available[chosen]);
    candidate.release_unused();
    let batch = choose_batch_walk(candidate, probes, width);
    let timings: Vec<KernelTiming> = available
        .iter()
        .zip(&best)
        .map(|(kernel, nanos)| KernelTiming { kernel: *kernel, nanos_per_row: (nanos * 10.0).round() / 10.0 })
        .collect();
    let names = available.iter().map(|kernel| kernel.name()).collect::<Vec<_>>().join(", ");
    let why = if chosen == fastest {
        format!("the {} kernel scored the probe rows fastest of {names}", available[chosen].name())
    } else {
        format!(
            "kept the {} kernel: the fastest of {names} on the probe rows ({}) was not {:.0} % faster",
            available[chosen].name(),
            available[fastest].name(),
            MARGIN * 100.0
        )
    };
    (why + &batch, timings)
}

/// Where the line kernel could walk batches, times it against the block walk on the probe blocks (alternating
/// rounds, best of each) and keeps it unless the block walk is [`MARGIN`] faster; returns what to add to the reason.
fn choose_batch_walk<T: Probe>(candidate: &mut TreeEvaluator<T>, probes: &[T], width: usize) -> String {
    if !candidate.can_batch_by_lines() {
        return String::new();
    }
    let rows = (probes.len() / width).min(2 * ROW_BLOCK);
    let mut bins = candidate.bin_scratch(ROW_BLOCK);
    let mut margins = vec![T::ZERO; ROW_BLOCK * candidate.num_outputs()];
    let mut best = [f64::INFINITY; 2];
    for _ in 0..TIMING_ROUNDS {
        for (by_lines, best) in [true, false].into_iter().zip(&mut best) {
            candidate.set_batch_by_lines(by_lines);
            let started = Instant::now();
            for block in probes[..rows * width].chunks(ROW_BLOCK * width) {
                candidate.margin_block(block, width, block.len() / width, &mut bins, &mut margins);
            }
            std::hint::black_box(&margins);
            *best = best.min(started.elapsed().as_nanos() as f64 / rows.max(1) as f64);
        }
    }
    let by_lines = best[1] >= best[0] * (1.0 - MARGIN);
    candidate.set_batch_by_lines(by_lines);
    format!(
        "; batches walk by {} ({:.0} ns a probe row by lines, {:.0} by blocks)",
        if by_lines { "lines" } else { "blocks" },
        best[0],
        best[1]
    )
}

/// Deterministic probe rows (row-major, `features` values a row): row 0 all NaN, row 1 all -0.0, the others pick
/// per feature among the specials and sampled thresholds with their neighbours.
fn probe_rows<T: Probe>(cuts: &Cuts<T>, features: usize) -> Vec<T> {
    let candidates: Vec<Vec<T>> = (0..features)
        .map(|feature| {
            let cuts = cuts.of(feature);
            let mut values = T::SPECIALS.to_vec();
            let picks = cuts.len().min(PROBED_CUTS);
            for pick in 0..picks {
                let cut = cuts[if picks > 1 { pick * (cuts.len() - 1) / (picks - 1) } else { 0 }];
                values.extend([cut, cut.down(), cut.up()]);
            }
            values
        })
        .collect();
    let mut state = 0x005E_ED0F_C0DE_u64;
    let mut rows = Vec::with_capacity(PROBE_ROWS * features);
    for row in 0..PROBE_ROWS {
        for values in &candidates {
            rows.push(match row {
                0 => values[0],
                1 => values[2],
                _ => {
                    // SplitMix64.
                    state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                    let mut z = state;
                    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                    values[((z ^ (z >> 31)) % values.len() as u64) as usize]
                }
            });
        }
    }
    rows
}

/// Scores `rows` with both evaluators, one row at a time and in blocks; the number of rows, or the first
/// difference.
pub(crate) fn verify<T: Probe>(
    reference: &Forest<T>,
    candidate: &TreeEvaluator<T>,
    rows: &[T],
    width: usize,
) -> Result<usize, String> {
    let outputs = reference.num_outputs();
    let width = width.max(1);
    let count = rows.len() / width;
    let same = |a: &[T], b: &[T]| a.iter().zip(b).all(|(a, b)| a.bits() == b.bits());
    let mut leaf_values = vec![T::ZERO; reference.num_trees()];
    let (mut expected, mut found) = (vec![T::ZERO; outputs], vec![T::ZERO; outputs]);
    let mut bins = candidate.bin_scratch(ROW_BLOCK);
    for (index, row) in rows.chunks(width).enumerate() {
        reference.margin_one(row, &mut expected, &mut leaf_values);
        candidate.margin_one(row, &mut bins, &mut found, &mut leaf_values);
        if !same(&expected, &found) {
            return Err(format!("probe row {index}: margin {found:?}, reference {expected:?}"));
        }
    }
    let (mut expected, mut found) = (vec![T::ZERO; ROW_BLOCK * outputs], vec![T::ZERO; ROW_BLOCK * outputs]);
    for (block, rows) in rows.chunks(ROW_BLOCK * width).enumerate() {
        let rows_here = rows.len() / width;
        reference.margin_block(rows, width, rows_here, &mut expected);
        candidate.margin_block(rows, width, rows_here, &mut bins, &mut found);
        let used = rows_here * outputs;
        if !same(&expected[..used], &found[..used]) {
            return Err(format!("probe block {block}: the block walk differs"));
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Aggregation, Direction, Node, SplitTest, Tree};

    /// A stump on feature 0 at `threshold` per tree, so that every cut decides a leaf.
    fn stumps(thresholds: &[f64], precision: Precision) -> TreeEnsemble {
        let trees = thresholds
            .iter()
            .enumerate()
            .map(|(index, threshold)| Tree {
                nodes: vec![
                    Node::Split {
                        feature: 0,
                        test: SplitTest::LessThan(*threshold),
                        left: 1,
                        right: 2,
                        missing: if index % 2 == 0 { Direction::Left } else { Direction::Right },
                    },
                    Node::Leaf { value: -1.0 - index as f64 },
                    Node::Leaf { value: 1.0 + index as f64 },
                ],
                output: 0,
                cover: None,
            })
            .collect();
        TreeEnsemble {
            trees,
            num_outputs: 1,
            base_margin: vec![0.5],
            aggregation: Aggregation::Sum,
            precision,
            num_features: 2,
        }
    }

    #[test]
    fn a_quantised_walk_is_chosen_and_verified() {
        let ensemble = stumps(&[-0.0, 0.0, 1.5, 1e-40, f64::from(f32::MAX), 3.0, 1.5], Precision::F32);
        let (evaluator, report) = compile_trees::<f32>(&ensemble, EvaluatorChoice::Quantised, KernelChoice::Auto);
        assert!(matches!(evaluator, TreeEvaluator::QuantisedU8(_)), "{report:?}");
        assert_eq!(report.evaluator, "quantised-u8");
        assert_eq!(report.verified_rows, PROBE_ROWS);
        // -0.0 and 0.0 are one cut, 1.5 appears twice.
        assert_eq!(report.max_thresholds_per_feature, 5);
        let (evaluator, report) = compile_trees::<f32>(&ensemble, EvaluatorChoice::Reference, KernelChoice::Auto);
        assert!(matches!(evaluator, TreeEvaluator::Reference(_)));
        assert_eq!((report.evaluator, report.verified_rows), ("reference", 0));
    }

    #[test]
    fn auto_times_every_kernel_and_keeps_the_fastest() {
        let thresholds: Vec<f64> = (0..40).map(|index| f64::from(index) * 0.5 - 3.0).collect();
        let ensemble = stumps(&thresholds, Precision::F32);
        let (_, report) = compile_trees::<f32>(&ensemble, EvaluatorChoice::Quantised, KernelChoice::Auto);
        let available = Kernel::available();
        if available.len() > 1 {
            let timed: Vec<Kernel> = report.kernel_timings.iter().map(|timing| timing.kernel).collect();
            assert_eq!(timed, available);
            // The kept kernel is the fastest, or within the margin of it.
            let time = |kernel: Kernel| report.kernel_timings.iter().find(|timing| timing.kernel == kernel).unwrap();
            let fastest = report.kernel_timings.iter().map(|timing| timing.nanos_per_row).fold(f64::INFINITY, f64::min);
            // (Timings are reported to 0.1 ns.)
            assert!(time(report.kernel).nanos_per_row * (1.0 - MARGIN) <= fastest + 0.1, "{report:?}");
            assert!(report.reason.contains("fastest"), "{report:?}");
        } else {
            assert!(report.kernel_timings.is_empty());
        }
        for kernel in available {
            let (_, forced) =
                compile_trees::<f32>(&ensemble, EvaluatorChoice::Quantised, KernelChoice::Exactly(kernel));
            assert_eq!((forced.kernel, forced.kernel_timings.len()), (kernel, 0), "{forced:?}");
            // What the kernels not chosen built while they were timed is dropped.
            if kernel == report.kernel {
                assert_eq!(forced.resident_bytes, report.resident_bytes, "{forced:?} {report:?}");
            }
        }
        // The reference walk has no kernel to choose.
        let (_, reference) = compile_trees::<f32>(&ensemble, EvaluatorChoice::Reference, KernelChoice::Auto);
        assert_eq!(
            (reference.kernel, reference.one_row_walk, reference.batch_walk),
            (Kernel::Portable, "scalar", "blocks")
        );
    }

    /// `count` complete trees of `depth` levels over `features` features, thresholds (among `spread` values) and
    /// leaves from a xorshift.
    fn complete_trees(count: usize, depth: u32, features: u32, spread: u64, precision: Precision) -> TreeEnsemble {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let trees = (0..count)
            .map(|_| {
                let splits = (1usize << depth) - 1;
                let nodes = (0..2 * splits + 1)
                    .map(|index| match index < splits {
                        true => Node::Split {
                            feature: (next() % u64::from(features)) as u32,
                            test: SplitTest::LessThan(f64::from((next() % spread) as u32) * 0.125 - 4.0),
                            left: 2 * index as u32 + 1,
                            right: 2 * index as u32 + 2,
                            missing: if next() % 2 == 0 { Direction::Left } else { Direction::Right },
                        },
                        false => Node::Leaf { value: f64::from((next() % 1000) as f32) / 997.0 },
                    })
                    .collect();
                Tree { nodes, output: 0, cover: None }
            })
            .collect();
        TreeEnsemble {
            trees,
            num_outputs: 1,
            base_margin: vec![0.25],
            aggregation: Aggregation::Sum,
            precision,
            num_features: features as usize,
        }
    }

    #[test]
    fn batches_walk_by_lines_or_blocks_and_both_match_the_reference() {
        // 37 trees of 8 levels: a pipelined run of 32 and a remainder; 6 trees of 3 levels walk apart. Narrow split
        // words (64 thresholds a feature), then wide ones (thousands: ranks past what 16 bits hold beside a slot).
        for (features, spread, wide) in [(7, 64, false), (2, 8192, true)] {
            let mut ensemble = complete_trees(37, 8, features, spread, Precision::F32);
            ensemble.trees.extend(complete_trees(6, 3, features, spread, Precision::F32).trees);
            let (evaluator, report) = compile_trees::<f32>(&ensemble, EvaluatorChoice::Quantised, KernelChoice::Auto);
            assert_eq!(report.batch_walk, evaluator.batch_walk());
            let mut candidate = evaluator;
            if !Kernel::Avx512.supported() {
                assert_eq!(report.batch_walk, "blocks");
                continue;
            }
            candidate.use_kernel(Kernel::Avx512);
            match &candidate {
                TreeEvaluator::QuantisedU8(forest) => assert!(forest.can_batch_by_lines() && !wide),
                TreeEvaluator::QuantisedU16(forest) => {
                    assert!(forest.can_batch_by_lines() && forest.wide_lines() == wide, "{report:?}")
                }
                TreeEvaluator::Reference(_) => panic!("{report:?}"),
            }
            let reference = Forest::<f32>::compile(&ensemble);
            let cuts = Cuts::<f32>::collect(&ensemble).unwrap();
            let probes = probe_rows(&cuts, features as usize);
            for (by_lines, walk) in [(true, "lines"), (false, "blocks")] {
                candidate.set_batch_by_lines(by_lines);
                assert_eq!(candidate.batch_walk(), walk);
                // Blocks of 64 rows (pairs of rows) and of 11 (an odd row at the end); one row at a time too.
                assert_eq!(verify(&reference, &candidate, &probes, features as usize), Ok(PROBE_ROWS), "{walk}");
            }
            // The compile step says which walk it timed faster.
            if report.one_row_walk == "lines" {
                assert!(report.reason.contains(&format!("batches walk by {}", report.batch_walk)), "{report:?}");
            }
        }
    }

    #[test]
    fn many_thresholds_take_wide_bins() {
        let thresholds: Vec<f64> = (0..300).map(|index| f64::from(index) * 0.25 - 10.0).collect();
        let ensemble = stumps(&thresholds, Precision::F64);
        let (evaluator, report) = compile_trees::<f64>(&ensemble, EvaluatorChoice::Quantised, KernelChoice::Auto);
        assert!(matches!(evaluator, TreeEvaluator::QuantisedU16(_)), "{report:?}");
        assert_eq!(report.max_thresholds_per_feature, 300);
    }

    #[test]
    fn verification_notices_a_wrong_evaluator() {
        let ensemble = stumps(&[0.25, 1.0, 2.0], Precision::F32);
        let reference = Forest::<f32>::compile(&ensemble);
        let cuts = Cuts::<f32>::collect(&ensemble).unwrap();
        let probes = probe_rows(&cuts, 2);
        let mut candidate = QuantisedForest::<f32, u8>::compile(&ensemble, cuts).unwrap();
        let mut evaluator = TreeEvaluator::QuantisedU8(candidate);
        assert_eq!(verify(&reference, &evaluator, &probes, 2), Ok(PROBE_ROWS));
        let TreeEvaluator::QuantisedU8(forest) = evaluator else { unreachable!() };
        candidate = forest;
        candidate.corrupt_for_test();
        evaluator = TreeEvaluator::QuantisedU8(candidate);
        assert!(verify(&reference, &evaluator, &probes, 2).is_err());
    }

    #[test]
    fn auto_keeps_the_reference_when_quantising_costs_more_than_it_saves() {
        // One stump over two features: one split per row, two binary searches.
        let mut ensemble = stumps(&[0.5], Precision::F64);
        if let Node::Split { feature, .. } = &mut ensemble.trees[0].nodes[0] {
            *feature = 1;
        }
        ensemble.trees.push(stumps(&[0.5], Precision::F64).trees.remove(0));
        let (_, auto) = compile_trees::<f64>(&ensemble, EvaluatorChoice::Auto, KernelChoice::Auto);
        assert_eq!(auto.evaluator, "reference", "{auto:?}");
        let (_, forced) = compile_trees::<f64>(&ensemble, EvaluatorChoice::Quantised, KernelChoice::Auto);
        assert_eq!(forced.evaluator, "quantised-u8", "{forced:?}");
    }
}
