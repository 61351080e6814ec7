//! Quantised forests: each threshold becomes its rank among its feature's distinct thresholds and each row its bin indexes, so that a split is one small-integer comparison.
//!
//! At compile time every feature's thresholds (`x < t`, in the ensemble's precision) are collected, sorted and
//! deduplicated by value (so `-0.0` and `0.0` are one cut): `c_0 < c_1 < ... < c_{m-1}`. A split on `c_k` stores
//! the rank `k + 1`. At scoring time each feature value `x` a tree reads is mapped once per row to
//! `b(x) = #{j : c_j <= x} + 1`, the same comparison in the same precision as the reference walk. Then
//! `x < c_k  ⇔  #{j : c_j <= x} <= k  ⇔  b(x) <= k + 1`, so `go_right ⇔ b(x) > rank`, exactly, for every non-NaN
//! `x` (signed zeros, infinities, subnormals included: they are compared, never transformed).
//!
//! Missing values keep the node's direction by giving every feature two slots in the row's bins: slot `2f` holds
//! `0` for NaN (below every rank: NaN goes left) and slot `2f + 1` holds the bin type's maximum for NaN (above every
//! rank, since ranks stop at `m <= MAX - 1`: NaN goes right); both hold `b(x)` otherwise. A split reads the slot of
//! its missing direction, so the step has no NaN test at all. Missing-value rewrites (LightGBM's missing types) run
//! before the forest, as for the reference walk. Categorical splits are not quantised: such ensembles keep the
//! reference evaluator (`crate::compile` decides).
//!
//! Layouts mirror `forest.rs`: shallow trees in a complete heap layout (4-byte splits `{slot, rank}`, leaves apart),
//! other trees in pre-order nodes (8 bytes `{slot, rank, right}`, leaf values apart, tree by tree). A leaf reads a
//! constant slot that always holds the bin type's maximum, so it always goes "right", by an offset of 0: it steps to
//! itself, and its rank field is free to hold the index of its value. Leaves are summed in tree order, so results
//! are bit-identical to the reference walk.

#![allow(
    unsafe_code,
    reason = "the walks index validated arrays without bounds checks; see `QuantisedForest::compile`"
)]

use std::marker::PhantomData;

use crate::forest::{Float, LANES, MAX_COMPLETE_DEPTH, MAX_PADDING, ROW_BLOCK};
use crate::ir::{Aggregation, Direction, Node, SplitTest, Tree, TreeEnsemble};
use crate::kernel::{
    BLOCK_WORDS, FENCE_STRIDE, FencedFeature, GATHER_PADDING, GROUP_LANES, Kernel, LINE_RANK_LIMIT, LeafSink, LineTree,
    SLOT_BITS, TABLE_SLOTS, TIER_DEPTH, VectorGroup,
};

/// Most cuts a feature may have for the line kernel's table to be computed with its AVX-512 fences (16 fences, one
/// register of `f32`); past that, the binary search is faster.
const SIMD_TABLE_CUTS: usize = 256;

/// Deepest general-layout tree the line kernel walks (made complete: `2^depth` leaf values each).
const MAX_LINE_GENERAL_DEPTH: u32 = 8;

/// Most features a quantised forest reads: two bin slots per feature and the constant slot must fit a `u16`.
pub const MAX_FEATURES: usize = (1 << 15) - 1;

/// A row's bin index type: `u8` when every feature has at most 254 distinct thresholds, else `u16`.
pub trait Bin: Copy + Default + PartialEq + std::fmt::Debug + Send + Sync + 'static {
    /// The bin of a missing value in a slot that sends missing values right.
    const MAX: Self;
    /// Most distinct thresholds per feature (ranks stay below [`Bin::MAX`]).
    const CAPACITY: usize;
    /// `u8` or `u16`, for reports.
    const NAME: &'static str;
    fn from_index(index: usize) -> Self;
    fn widen(self) -> u32;
}

impl Bin for u8 {
    const MAX: Self = u8::MAX;
    const CAPACITY: usize = u8::MAX as usize - 1;
    const NAME: &'static str = "u8";
    fn from_index(index: usize) -> Self {
        debug_assert!(index <= u8::MAX as usize);
        index as u8
    }
    fn widen(self) -> u32 {
        u32::from(self)
    }
}

impl Bin for u16 {
    const MAX: Self = u16::MAX;
    const CAPACITY: usize = u16::MAX as usize - 1;
    const NAME: &'static str = "u16";
    fn from_index(index: usize) -> Self {
        debug_assert!(index <= u16::MAX as usize);
        index as u16
    }
    fn widen(self) -> u32 {
        u32::from(self)
    }
}

/// Every feature's distinct thresholds in the ensemble's precision, ascending.
#[derive(Debug, Clone)]
pub struct Cuts<T> {
    /// Feature after feature.
    values: Vec<T>,
    /// Feature `f`'s cuts are `values[start[f]..start[f + 1]]`.
    start: Vec<u32>,
}

impl<T: Float> Cuts<T> {
    /// The cuts of a validated ensemble, or why it cannot be quantised.
    pub fn collect(ensemble: &TreeEnsemble) -> Result<Cuts<T>, String> {
        let features = ensemble.num_features;
        if features == 0 {
            return Err("the trees read no feature".into());
        }
        if features > MAX_FEATURES {
            return Err(format!("{features} features, more than the {MAX_FEATURES} a quantised forest indexes"));
        }
        let mut per_feature: Vec<Vec<T>> = vec![Vec::new(); features];
        for tree in &ensemble.trees {
            for node in &tree.nodes {
                match node {
                    Node::Leaf { .. } => {}
                    Node::Split { feature, test: SplitTest::LessThan(threshold), .. } => {
                        per_feature[*feature as usize].push(T::from_f64(*threshold))
                    }
                    Node::Split { test: SplitTest::CategoryIn { .. }, .. } => {
                        return Err("categorical splits are not quantised".into());
                    }
                }
            }
        }
        let mut values = Vec::new();
        let mut start = Vec::with_capacity(features + 1);
        for mut cuts in per_feature {
            start.push(values.len() as u32);
            // Validated thresholds are never NaN, so the order is total; `==` merges -0.0 and 0.0.
            cuts.sort_unstable_by(|a, b| a.partial_cmp(b).expect("thresholds are not NaN"));
            cuts.dedup_by(|a, b| a == b);
            values.extend(cuts);
        }
        start.push(values.len() as u32);
        Ok(Cuts { values, start })
    }

    /// Distinct thresholds of feature `feature`.
    pub fn of(&self, feature: usize) -> &[T] {
        &self.values[self.start[feature] as usize..self.start[feature + 1] as usize]
    }

    /// Most distinct thresholds of any feature.
    pub fn widest(&self) -> usize {
        self.start.windows(2).map(|pair| (pair[1] - pair[0]) as usize).max().unwrap_or(0)
    }

    /// The rank a split on `threshold` stores: 1 + the index of `threshold` among its feature's cuts.
    fn rank(&self, feature: usize, threshold: T) -> u16 {
        let cuts = self.of(feature);
        let index = cuts.partition_point(|cut| *cut < threshold);
        debug_assert!(cuts.get(index) == Some(&threshold), "every threshold is a cut of its feature");
        (index + 1) as u16
    }
}

/// A complete-layout split: go right iff `bins[slot] > rank`. Four-byte aligned, so that the SIMD kernels read it
/// as one little-endian `u32` (`slot` in the low half).
#[derive(Debug, Clone, Copy)]
#[repr(C, align(4))]
struct Split {
    slot: u16,
    rank: u16,
}

/// One block of the line kernel's tiered layout: a full block of [`TIER_DEPTH`] levels (15 split words
/// `slot | rank << SLOT_BITS` and a pad), half a cache line.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(32))]
struct LineBlock([u16; BLOCK_WORDS]);
const _: () = assert!(size_of::<LineBlock>() == 32);

/// Where a complete tree's splits go. Instead of one heap (where each of the last levels is another cache line),
/// the tree is cut every [`TIER_DEPTH`] levels into tiers of blocks, each block a small heap of its own: the top
/// block holds levels 0-3, the 16 blocks of the next tier levels 4-7, and so on; the last tier's blocks hold the
/// remaining levels. A block of `h` levels takes `2^h` slots (its `2^h - 1` splits and a pad), so a full block is
/// one aligned [`LineBlock`], and a walk of depth 8 reads two blocks instead of five cache lines.
///
/// Split `k` of level `L` (`k` counted left to right among the level's `2^L` positions) lies in tier `t = L / 4`, in
/// block `k >> (L - 4t)` of that tier, at heap position `2^l - 1 + (k mod 2^l)` of the block, `l = L - 4t`.
#[derive(Debug, Clone, Copy)]
struct TierLayout {
    depth: u32,
}

impl TierLayout {
    fn of(depth: u32) -> TierLayout {
        debug_assert!(depth as usize <= MAX_COMPLETE_DEPTH);
        TierLayout { depth }
    }

    /// Levels of tier `tier`'s blocks.
    fn levels(self, tier: u32) -> u32 {
        (self.depth - tier * TIER_DEPTH).min(TIER_DEPTH)
    }

    /// Slots before tier `tier`: every earlier tier is full, `16^u` blocks of 16 slots for tier `u`.
    fn tier_start(self, tier: u32) -> usize {
        (0..tier).map(|earlier| 1usize << (TIER_DEPTH * (earlier + 1))).sum()
    }

    /// Slot of split `position` (left to right) of level `level`, from the tree's root.
    fn address(self, level: u32, position: usize) -> usize {
        let tier = level / TIER_DEPTH;
        let inner = level - tier * TIER_DEPTH;
        let block = position >> inner;
        let within = (1usize << inner) - 1 + (position & ((1usize << inner) - 1));
        self.tier_start(tier) + (block << self.levels(tier)) + within
    }

    /// Blocks the tree takes (whole blocks, so that the next tree starts on a block).
    fn blocks(self) -> usize {
        if self.depth == 0 {
            return 0;
        }
        let last = (self.depth - 1) / TIER_DEPTH;
        let slots = self.tier_start(last) + (1usize << (TIER_DEPTH * last + self.levels(last)));
        slots.div_ceil(BLOCK_WORDS)
    }
}

/// A general-layout node; the left child is the next node. A leaf is `{2 * num_features, index, 0}`: it reads the
/// constant slot (always the bin type's maximum, above every rank and leaf index), so it always goes "right", by 0,
/// and its rank field holds the index of its value among its tree's leaves.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct PackedNode {
    slot: u16,
    rank: u16,
    right: u32,
}

/// A block's bins are slot-major: `bins[(slot << BLOCK_SHIFT) + row]`.
const BLOCK_SHIFT: u32 = ROW_BLOCK.trailing_zeros();
const _: () = assert!(ROW_BLOCK == 1 << BLOCK_SHIFT, "row blocks are a power of two");

#[derive(Debug, Clone, Copy)]
enum Placement {
    Complete {
        splits: u32,
        leaves: u32,
        depth: u32,
    },
    /// Nodes from `root`, leaf values from `leaves`.
    General {
        root: u32,
        depth: u32,
        leaves: u32,
    },
}

/// Up to `LANES` trees of one layout walked together for one row.
#[derive(Debug, Clone)]
struct LaneGroup {
    depth: u32,
    general: bool,
    /// (tree index, first split or root, first leaf).
    trees: Vec<(u32, u32, u32)>,
}

/// A compiled ensemble whose splits compare bin indexes of type `B`.
#[derive(Debug)]
pub struct QuantisedForest<T, B> {
    cuts: Cuts<T>,
    /// Features some split reads (always including feature 0, whose slots padding splits and leaves read), with
    /// where their cuts start and how many there are.
    used_features: Vec<(u32, u32, u32)>,
    placements: Vec<Placement>,
    outputs: Vec<u32>,
    /// Complete-layout splits, tree after tree, each tree a heap.
    splits: Vec<Split>,
    leaves: Vec<T>,
    nodes: Vec<PackedNode>,
    /// Leaf values of general-layout trees, tree after tree, in pre-order.
    general_leaves: Vec<T>,
    lane_groups: Vec<LaneGroup>,
    /// Index of the first general-layout group in `lane_groups` (complete-layout groups come first).
    first_general_group: usize,
    /// The one-row walk's instruction set: with a SIMD kernel, complete-layout trees go through `vector_groups`
    /// and only general-layout lane groups take the scalar walk.
    kernel: Kernel,
    vector_groups: Vec<VectorGroup>,
    /// With AVX-512 and at most [`TABLE_SLOTS`] bin slots a row: the complete-layout trees, in tree order, for the
    /// line kernel (which then replaces `vector_groups`).
    line_trees: Vec<LineTree>,
    /// Where each run of `line_trees` of one walked depth ends (the kernel walks a run at a time).
    line_runs: Vec<u32>,
    /// The complete-layout trees again, in tiers of blocks (see [`TierLayout`]), for the line kernel.
    lines: Vec<LineBlock>,
    /// Whether `lines` hold wide blocks (a rank at or past `LINE_RANK_LIMIT`: 16 slot words, then 16 rank words),
    /// else blocks of 16-bit split words `slot | rank << SLOT_BITS`.
    wide_lines: bool,
    /// With the line kernel: the general-layout trees it does not walk, in lane groups for the scalar walk.
    line_general_groups: Vec<LaneGroup>,
    /// With the line kernel and at most `SIMD_TABLE_CUTS` cuts a feature: the used features with their fences
    /// (every `FENCE_STRIDE`-th cut) in `fences`, for the row's table computed with AVX-512 (empty otherwise: the
    /// binary search computes it).
    line_features: Vec<FencedFeature>,
    fences: Vec<T>,
    /// Where the leaf values that only the line kernel reads start in `leaves` (those of the general-layout trees
    /// it walks, made complete).
    line_leaves_from: usize,
    /// Whether batches may walk by the line kernel, two rows at a time, where it applies (see
    /// [`QuantisedForest::batch_walk`]); the compile step times both walks and decides.
    batch_by_lines: bool,
    /// Whether `line_trees` are every tree, in order, of a single output: the line kernel then adds the leaf values to
    /// the margin as it reaches them.
    fused_sum: bool,
    base_margin: Vec<T>,
    divisors: Option<Vec<T>>,
    single_output: bool,
    num_features: usize,
    source_nodes: usize,
    bins: PhantomData<B>,
}

impl<T: Float, B: Bin> QuantisedForest<T, B> {
    /// Compiles a validated ensemble whose cuts fit `B` (see [`Cuts::collect`]), with the portable one-row kernel
    /// (see [`QuantisedForest::use_kernel`]).
    pub fn compile(ensemble: &TreeEnsemble, cuts: Cuts<T>) -> Result<QuantisedForest<T, B>, String> {
        if cuts.widest() > B::CAPACITY {
            return Err(format!(
                "a feature has {} distinct thresholds, more than {} bins hold",
                cuts.widest(),
                B::NAME
            ));
        }
        let mut used = vec![false; ensemble.num_features];
        used[0] = true;
        for tree in &ensemble.trees {
            for node in &tree.nodes {
                if let Node::Split { feature, .. } = node {
                    used[*feature as usize] = true;
                }
            }
        }
        let used_features = (0..used.len())
            .filter(|feature| used[*feature])
            .map(|feature| (feature as u32, cuts.start[feature], cuts.start[feature + 1] - cuts.start[feature]))
            .collect();
        let mut forest = QuantisedForest {
            cuts,
            used_features: Vec::new(),
            placements: Vec::with_capacity(ensemble.trees.len()),
            outputs: ensemble.trees.iter().map(|tree| tree.output).collect(),
            splits: Vec::new(),
            leaves: Vec::new(),
            nodes: Vec::new(),
            general_leaves: Vec::new(),
            lane_groups: Vec::new(),
            first_general_group: 0,
            kernel: Kernel::Portable,
            vector_groups: Vec::new(),
            line_trees: Vec::new(),
            line_runs: Vec::new(),
            lines: Vec::new(),
            wide_lines: false,
            line_general_groups: Vec::new(),
            line_features: Vec::new(),
            fences: Vec::new(),
            line_leaves_from: 0,
            batch_by_lines: true,
            fused_sum: false,
            base_margin: ensemble.base_margin.iter().map(|value| T::from_f64(*value)).collect(),
            divisors: None,
            single_output: ensemble.num_outputs == 1,
            num_features: ensemble.num_features,
            source_nodes: ensemble.trees.iter().map(|tree| tree.nodes.len()).sum(),
            bins: PhantomData,
        };
        forest.used_features = used_features;
        for tree in &ensemble.trees {
            let depth = tree.depth();
            let leaf_count = tree.nodes.iter().filter(|node| matches!(node, Node::Leaf { .. })).count();
            let placement = if depth <= MAX_COMPLETE_DEPTH && (1usize << depth) <= MAX_PADDING * leaf_count {
                forest.push_complete(tree, depth)
            } else if leaf_count <= B::CAPACITY {
                forest.push_general(tree, depth)
            } else {
                return Err(format!("a tree has {leaf_count} leaves, more than {} bins index", B::NAME));
            };
            forest.placements.push(placement);
        }
        forest.group_lanes();
        if ensemble.aggregation == Aggregation::Mean {
            let mut counts = vec![0usize; ensemble.num_outputs];
            for tree in &ensemble.trees {
                counts[tree.output as usize] += 1;
            }
            forest.divisors = Some(counts.into_iter().map(|count| T::from_count(count.max(1))).collect());
        }
        Ok(forest)
    }

    pub fn num_outputs(&self) -> usize {
        self.base_margin.len()
    }

    pub fn num_trees(&self) -> usize {
        self.placements.len()
    }

    pub fn source_nodes(&self) -> usize {
        self.source_nodes
    }

    /// Bin slots of one row: two per feature, the constant slot, and room for a SIMD gather at the last slot.
    pub fn row_bins(&self) -> usize {
        2 * self.num_features + 1 + GATHER_PADDING
    }

    /// The one-row walk's kernel.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Switches the one-row walk to `kernel`, which this CPU must run, building what it reads unless it was built
    /// before (so that the compile step can time kernels in turn; see [`QuantisedForest::release_unused`]). A forest of
    /// more splits than 32-bit gather indexes reach keeps the portable kernel.
    pub fn use_kernel(&mut self, kernel: Kernel) {
        assert!(kernel.supported(), "the compile step only asks for kernels this CPU runs");
        self.kernel = Kernel::Portable;
        if kernel == Kernel::Portable || self.splits.len() > i32::MAX as usize {
            return;
        }
        if kernel == Kernel::Avx512 && 2 * self.num_features < TABLE_SLOTS {
            if self.lines.is_empty() {
                self.build_lines();
            }
        } else if self.vector_groups.is_empty() {
            self.group_vectors();
        }
        self.kernel = kernel;
    }

    /// Drops what kernels other than the current one built.
    pub fn release_unused(&mut self) {
        if !self.walks_lines() && !self.lines.is_empty() {
            self.line_trees = Vec::new();
            self.line_runs = Vec::new();
            self.lines = Vec::new();
            self.line_general_groups = Vec::new();
            self.line_features = Vec::new();
            self.fences = Vec::new();
            self.leaves.truncate(self.line_leaves_from);
            self.leaves.shrink_to_fit();
            self.fused_sum = false;
        }
        if self.kernel == Kernel::Portable || self.walks_lines() {
            self.vector_groups = Vec::new();
        }
    }

    /// Whether the one-row walk is the AVX-512 line kernel.
    fn walks_lines(&self) -> bool {
        self.kernel == Kernel::Avx512 && !self.line_trees.is_empty()
    }

    /// Whether the one-row walk is the line kernel and it walks every tree (none is left to the scalar walk).
    pub fn lines_walk_every_tree(&self) -> bool {
        self.walks_lines() && self.line_trees.len() == self.placements.len()
    }

    /// Whether the line kernel's blocks are wide (a rank at or past `LINE_RANK_LIMIT`: slot and rank words apart).
    pub fn wide_lines(&self) -> bool {
        self.walks_lines() && self.wide_lines
    }

    /// Whether the line kernel could walk batches: it walks every tree, of a single output.
    pub fn can_batch_by_lines(&self) -> bool {
        self.fused_sum && self.walks_lines()
    }

    /// Lets batches walk by the line kernel where it applies (`true`, the default), or keeps the block walk.
    pub fn set_batch_by_lines(&mut self, by_lines: bool) {
        self.batch_by_lines = by_lines;
    }

    /// How batches walk: `lines` (the line kernel, two rows at a time) or `blocks` (a block of rows walks each tree
    /// together, 8 rows a step).
    pub fn batch_walk(&self) -> &'static str {
        if self.batches_by_lines() { "lines" } else { "blocks" }
    }

    fn batches_by_lines(&self) -> bool {
        self.batch_by_lines && self.can_batch_by_lines()
    }

    /// How the kernel walks complete-layout trees for one row: `scalar` (8 trees interleaved), `gather` (16 or 8
    /// trees per SIMD gather) or `lines` (AVX-512, a row's bins in registers, a 4-level block per compare).
    pub fn one_row_walk(&self) -> &'static str {
        match self.kernel {
            Kernel::Portable => "scalar",
            _ if self.walks_lines() => "lines",
            _ => "gather",
        }
    }

    /// Trees in the complete layout.
    pub fn complete_trees(&self) -> usize {
        self.placements.iter().filter(|placement| matches!(placement, Placement::Complete { .. })).count()
    }

    /// Resident bytes of the compiled trees and cuts.
    pub fn resident_bytes(&self) -> usize {
        self.splits.len() * size_of::<Split>()
            + self.lines.len() * size_of::<LineBlock>()
            + self.line_trees.len() * size_of::<LineTree>()
            + self.line_runs.len() * size_of::<u32>()
            + self.line_features.len() * size_of::<FencedFeature>()
            + self.fences.len() * size_of::<T>()
            + self.vector_groups.len() * size_of::<VectorGroup>()
            + self.leaves.len() * size_of::<T>()
            + self.nodes.len() * size_of::<PackedNode>()
            + self.general_leaves.len() * size_of::<T>()
            + self.cuts.values.len() * size_of::<T>()
            + self.cuts.start.len() * 4
            + self.used_features.len() * 12
    }

    fn slot(feature: u32, missing: Direction) -> u16 {
        // `compile` refuses more than MAX_FEATURES features, so this fits.
        (2 * feature + u32::from(missing == Direction::Right)) as u16
    }

    fn push_complete(&mut self, tree: &Tree, depth: usize) -> Placement {
        let splits = self.splits.len();
        let leaves = self.leaves.len();
        let split_count = (1usize << depth) - 1;
        // Padding splits go either way: every leaf slot below them holds the same value.
        self.splits.resize(splits + split_count, Split { slot: 0, rank: 0 });
        self.leaves.resize(leaves + (1 << depth), T::ZERO);
        let mut stack = vec![(0u32, 0usize, 0usize)];
        while let Some((index, position, level)) = stack.pop() {
            match &tree.nodes[index as usize] {
                Node::Leaf { value } => {
                    let span = 1usize << (depth - level);
                    let first = (position + 1) * span - 1 - split_count;
                    self.leaves[leaves + first..leaves + first + span].fill(T::from_f64(*value));
                }
                Node::Split { feature, test, left, right, missing } => {
                    let SplitTest::LessThan(threshold) = test else {
                        unreachable!("Cuts::collect refuses categorical splits")
                    };
                    let rank = self.cuts.rank(*feature as usize, T::from_f64(*threshold));
                    self.splits[splits + position] = Split { slot: Self::slot(*feature, *missing), rank };
                    stack.push((*left, 2 * position + 1, level + 1));
                    stack.push((*right, 2 * position + 2, level + 1));
                }
            }
        }
        Placement::Complete { splits: splits as u32, leaves: leaves as u32, depth: depth as u32 }
    }

    fn push_general(&mut self, tree: &Tree, depth: usize) -> Placement {
        let root = self.nodes.len() as u32;
        let leaves = self.general_leaves.len();
        let constant_slot = (2 * self.num_features) as u16;
        let mut stack: Vec<(u32, Option<usize>)> = vec![(0, None)];
        while let Some((index, parent)) = stack.pop() {
            let position = self.nodes.len();
            if let Some(parent) = parent {
                self.nodes[parent].right = (position - parent) as u32;
            }
            match &tree.nodes[index as usize] {
                Node::Leaf { value } => {
                    // `compile` keeps a tree's leaves below B::MAX, so the index fits the rank and stays below
                    // the constant slot's bin.
                    let index = (self.general_leaves.len() - leaves) as u16;
                    self.nodes.push(PackedNode { slot: constant_slot, rank: index, right: 0 });
                    self.general_leaves.push(T::from_f64(*value));
                }
                Node::Split { feature, test, left, right, missing } => {
                    let SplitTest::LessThan(threshold) = test else {
                        unreachable!("Cuts::collect refuses categorical splits")
                    };
                    let rank = self.cuts.rank(*feature as usize, T::from_f64(*threshold));
                    self.nodes.push(PackedNode { slot: Self::slot(*feature, *missing), rank, right: 0 });
                    stack.push((*right, Some(position)));
                    stack.push((*left, None));
                }
            }
        }
        Placement::General { root, depth: depth as u32, leaves: leaves as u32 }
    }

    fn group_lanes(&mut self) {
        let mut complete: Vec<Vec<(u32, u32, u32)>> = vec![Vec::new(); MAX_COMPLETE_DEPTH + 1];
        let mut general: Vec<(u32, u32, u32, u32)> = Vec::new();
        for (index, placement) in self.placements.iter().enumerate() {
            match *placement {
                Placement::Complete { splits, leaves, depth } => {
                    complete[depth as usize].push((index as u32, splits, leaves))
                }
                Placement::General { root, depth, leaves } => general.push((depth, index as u32, root, leaves)),
            }
        }
        for (depth, trees) in complete.into_iter().enumerate() {
            for chunk in trees.chunks(LANES) {
                self.lane_groups.push(LaneGroup { depth: depth as u32, general: false, trees: chunk.to_vec() });
            }
        }
        self.first_general_group = self.lane_groups.len();
        let groups = Self::general_groups(general);
        self.lane_groups.extend(groups);
    }

    /// Lane groups of general-layout trees `(depth, tree, root, first leaf)`, grouped by depth.
    fn general_groups(mut general: Vec<(u32, u32, u32, u32)>) -> Vec<LaneGroup> {
        general.sort_unstable();
        general
            .chunks(LANES)
            .map(|chunk| {
                let depth = chunk.iter().map(|(depth, _, _, _)| *depth).max().unwrap_or(0);
                let trees = chunk.iter().map(|(_, tree, root, leaves)| (*tree, *root, *leaves)).collect();
                LaneGroup { depth, general: true, trees }
            })
            .collect()
    }

    /// Copies the trees into tiered blocks, in tree order, for the line kernel: every complete-layout tree, and every
    /// general-layout tree of at most [`MAX_LINE_GENERAL_DEPTH`] levels (made complete, its leaves appended to
    /// `leaves`); the general-layout trees left over keep their scalar lane groups in `line_general_groups`.
    fn build_lines(&mut self) {
        self.line_leaves_from = self.leaves.len();
        let walks_lines = |placement: &Placement| match *placement {
            Placement::Complete { .. } => true,
            Placement::General { depth, .. } => depth <= MAX_LINE_GENERAL_DEPTH,
        };
        // The top blocks come first, together, in tree order: every row reads every one of them, so they stay in
        // the L1 cache while the lower tiers' blocks come and go.
        let count = self.placements.iter().filter(|placement| walks_lines(placement)).count();
        // Ranks past what a 16-bit word holds beside the slot take wide blocks (slots and ranks in words apart).
        self.wide_lines = self.cuts.widest() >= LINE_RANK_LIMIT;
        let (wide, per_block) = (self.wide_lines, if self.wide_lines { 2 } else { 1 });
        self.lines.resize(count * per_block, LineBlock([0; BLOCK_WORDS]));
        let mut left_over = Vec::new();
        for tree in 0..self.placements.len() {
            let top = self.line_trees.len();
            let (rest, leaves, depth) = match self.placements[tree] {
                Placement::Complete { splits, leaves, depth } => {
                    let heap = &self.splits[splits as usize..][..(1usize << depth) - 1];
                    (push_tiers(&mut self.lines, top, heap, depth, wide), leaves, depth)
                }
                Placement::General { root, depth, leaves } if depth <= MAX_LINE_GENERAL_DEPTH => {
                    let (heap, values) = self.general_as_complete(root as usize, leaves as usize, depth);
                    let first_leaf = self.leaves.len() as u32;
                    self.leaves.extend(values);
                    (push_tiers(&mut self.lines, top, &heap, depth, wide), first_leaf, depth)
                }
                Placement::General { root, depth, leaves } => {
                    left_over.push((depth, tree as u32, root, leaves));
                    continue;
                }
            };
            let root = (top * BLOCK_WORDS) as u32;
            let walked = walked_depth(depth);
            self.line_trees.push(LineTree {
                root,
                rest,
                leaves,
                tree: tree as u32,
                depth: walked,
                shift: walked - depth,
            });
        }
        self.line_runs = self
            .line_trees
            .chunk_by(|a, b| a.depth == b.depth)
            .scan(0, |end, run| {
                *end += run.len() as u32;
                Some(*end)
            })
            .collect();
        // The kernel reads 16 words from every block's start, past the end of the last tree's smaller blocks.
        self.lines.resize(self.lines.len() + per_block, LineBlock([0; BLOCK_WORDS]));
        self.line_general_groups = Self::general_groups(left_over);
        // The table comes from the AVX-512 fences only up to SIMD_TABLE_CUTS cuts a feature (else `line_features`
        // stays empty and the binary search gives it).
        if self.cuts.widest() <= SIMD_TABLE_CUTS {
            for &(feature, start, count) in &self.used_features {
                let fence = self.fences.len() as u32;
                let cuts = &self.cuts.values[start as usize..(start + count) as usize];
                self.fences.extend(cuts.chunks_exact(FENCE_STRIDE).map(|group| group[FENCE_STRIDE - 1]));
                self.line_features.push(FencedFeature { feature, start, count, fence });
            }
        }
        self.fused_sum = self.single_output && self.line_trees.len() == self.placements.len();
    }

    /// A general-layout tree of `depth` levels as a complete one: its splits in heap order (padding splits where
    /// a leaf is above the last level) and its `2^depth` leaf values, each leaf's value repeated under it.
    fn general_as_complete(&self, root: usize, leaves: usize, depth: u32) -> (Vec<Split>, Vec<T>) {
        let split_count = (1usize << depth) - 1;
        let mut heap = vec![Split { slot: 0, rank: 0 }; split_count];
        let mut values = vec![T::ZERO; 1 << depth];
        let constant_slot = (2 * self.num_features) as u16;
        let mut stack = vec![(root, 0usize, 0u32)];
        while let Some((index, position, level)) = stack.pop() {
            let node = self.nodes[index];
            if node.slot == constant_slot {
                let span = 1usize << (depth - level);
                let first = (position + 1) * span - 1 - split_count;
                values[first..first + span].fill(self.general_leaves[leaves + node.rank as usize]);
            } else {
                heap[position] = Split { slot: node.slot, rank: node.rank };
                stack.push((index + 1, 2 * position + 1, level + 1));
                stack.push((index + node.right as usize, 2 * position + 2, level + 1));
            }
        }
        (heap, values)
    }

    /// Groups complete-layout trees of equal depth by [`GROUP_LANES`] for the SIMD kernels; a group's unused lanes
    /// repeat its first tree.
    fn group_vectors(&mut self) {
        let mut by_depth: Vec<Vec<(u32, u32, u32)>> = vec![Vec::new(); MAX_COMPLETE_DEPTH + 1];
        for (index, placement) in self.placements.iter().enumerate() {
            if let Placement::Complete { splits, leaves, depth } = *placement {
                by_depth[depth as usize].push((index as u32, splits, leaves));
            }
        }
        for (depth, trees) in by_depth.into_iter().enumerate() {
            for chunk in trees.chunks(GROUP_LANES) {
                let lane = |lane: usize| chunk[if lane < chunk.len() { lane } else { 0 }];
                let first_leaf = (1u32 << depth) - 1;
                self.vector_groups.push(VectorGroup {
                    start: std::array::from_fn(|index| lane(index).1),
                    step: std::array::from_fn(|index| 1u32.wrapping_sub(lane(index).1)),
                    leaf_shift: std::array::from_fn(|index| {
                        let (_, splits, leaves) = lane(index);
                        leaves.wrapping_sub(splits).wrapping_sub(first_leaf)
                    }),
                    tree: std::array::from_fn(|index| lane(index).0),
                    depth: depth as u32,
                    count: chunk.len() as u32,
                });
            }
        }
    }

    /// Maps one row (`features[..num_features]`) to its bins: slot `s` of the row goes to `bins[(s << shift) + row]`
    /// (shift 0 for one row; [`BLOCK_SHIFT`] for a block, whose bins are slot-major so that the rows walking a tree
    /// together read neighbouring bytes).
    #[inline(always)]
    fn quantise_row(&self, features: &[T], bins: &mut [B], row: usize, shift: u32) {
        let features = &features[..self.num_features];
        bins[((2 * self.num_features) << shift) + row] = B::MAX;
        for &(feature, start, count) in &self.used_features {
            let feature = feature as usize;
            let (left, right) = self.value_bins(features[feature], start, count);
            bins[((2 * feature) << shift) + row] = left;
            bins[((2 * feature + 1) << shift) + row] = right;
        }
    }

    /// A feature value's bins in the feature's two slots (its cuts are `count` from `start`): NaN is 0 (below every
    /// rank: it goes left) in the missing-left slot and `B::MAX` (above every rank) in the missing-right one; any
    /// other value is `1 + #{cuts <= value}` in both.
    #[inline(always)]
    fn value_bins(&self, value: T, start: u32, count: u32) -> (B, B) {
        if value.is_nan() {
            (B::default(), B::MAX)
        } else {
            let cuts = &self.cuts.values[start as usize..(start + count) as usize];
            let bin = B::from_index(count_at_most(cuts, value) + 1);
            (bin, bin)
        }
    }

    #[inline(always)]
    fn split(&self, index: usize) -> Split {
        debug_assert!(index < self.splits.len());
        // SAFETY: a complete walk of a tree at `splits` with depth `d` reads positions below 2^d - 1 during its d
        // steps, and `push_complete` reserved exactly those slots.
        unsafe { *self.splits.get_unchecked(index) }
    }

    #[inline(always)]
    fn leaf(&self, index: usize) -> T {
        debug_assert!(index < self.leaves.len());
        // SAFETY: after d steps a position lies in [2^d - 1, 2^(d+1) - 2], which maps onto the 2^d leaf slots
        // `push_complete` reserved for the tree.
        unsafe { *self.leaves.get_unchecked(index) }
    }

    #[inline(always)]
    fn node(&self, index: usize) -> PackedNode {
        debug_assert!(index < self.nodes.len());
        // SAFETY: walks start at a tree's root and follow offsets written by `push_general` from a validated tree
        // (every child inside the tree); leaves step to themselves.
        unsafe { *self.nodes.get_unchecked(index) }
    }

    /// The value of the general-layout leaf at node `position` of the tree whose leaf values start at `leaves`.
    #[inline(always)]
    fn general_leaf(&self, leaves: u32, position: usize) -> T {
        let index = leaves as usize + self.node(position).rank as usize;
        debug_assert!(index < self.general_leaves.len());
        // SAFETY: a general walk ends at a leaf of its tree (it takes the tree's depth in steps, and leaves step to
        // themselves); `push_general` gave that leaf its index among the tree's leaves, whose values it pushed from
        // `leaves` on.
        unsafe { *self.general_leaves.get_unchecked(index) }
    }

    /// Walks `N` complete-layout lanes for `depth` steps; lane `l` reads the tree whose splits start at
    /// `split_base[l]` and the bins at `bins[(slot << SHIFT) + l * LANE_STRIDE]`, `bins` starting at the lanes' first
    /// row: one row through 8 trees is `SHIFT = 0, LANE_STRIDE = 0`, 8 rows of a block through one tree
    /// `SHIFT = BLOCK_SHIFT, LANE_STRIDE = 1` (the lane is then an address displacement). Returns heap positions.
    /// A lane tracks its absolute split index `a = base + p`: the child `base + 2p + 1 + right` is
    /// `2a + (1 - base) + right`, one `lea` and one add.
    #[inline(always)]
    #[allow(clippy::needless_range_loop, reason = "lanes advance together; indexing keeps them in registers")]
    fn walk_complete<const N: usize, const SHIFT: u32, const LANE_STRIDE: usize>(
        &self,
        split_base: [usize; N],
        depth: u32,
        bins: &[B],
    ) -> [usize; N] {
        let mut at = split_base;
        let step: [usize; N] = std::array::from_fn(|lane| 1usize.wrapping_sub(split_base[lane]));
        for _ in 0..depth {
            for lane in 0..N {
                let split = self.split(at[lane]);
                let bin = bin_at(bins, ((split.slot as usize) << SHIFT) + lane * LANE_STRIDE);
                let right = (bin.widen() > u32::from(split.rank)) as usize;
                at[lane] = (2 * at[lane]).wrapping_add(step[lane]) + right;
            }
        }
        std::array::from_fn(|lane| at[lane] - split_base[lane])
    }

    /// Walks `N` general-layout lanes from `start` (bins addressed as in [`Self::walk_complete`]) for at most
    /// `depth` steps, stopping at the first step that finds every lane at a leaf; returns the leaves reached.
    #[inline(always)]
    #[allow(clippy::needless_range_loop, reason = "lanes advance together; indexing keeps them in registers")]
    fn walk_general<const N: usize, const SHIFT: u32, const LANE_STRIDE: usize>(
        &self,
        start: [usize; N],
        depth: u32,
        bins: &[B],
    ) -> [usize; N] {
        let mut position = start;
        for _ in 0..depth {
            let mut all_leaves = true;
            for lane in 0..N {
                let node = self.node(position[lane]);
                let bin = bin_at(bins, ((node.slot as usize) << SHIFT) + lane * LANE_STRIDE);
                all_leaves &= node.right == 0;
                // A conditional move: rows go both ways unpredictably.
                let go_right = bin.widen() > u32::from(node.rank);
                position[lane] += std::hint::select_unpredictable(go_right, node.right as usize, 1);
            }
            if all_leaves {
                break;
            }
        }
        position
    }

    fn start_margin(&self, margin: &mut [T]) {
        if self.divisors.is_some() {
            margin.fill(T::ZERO);
        } else {
            margin.copy_from_slice(&self.base_margin);
        }
    }

    fn finish_margin(&self, margin: &mut [T]) {
        if let Some(divisors) = &self.divisors {
            for ((slot, divisor), base) in margin.iter_mut().zip(divisors).zip(&self.base_margin) {
                *slot = *slot / *divisor;
                *slot += *base;
            }
        }
    }

    /// The margin of one row. `bins` (at least `row_bins()` long) and `leaf_values` (one per tree) are scratch.
    pub fn margin_one(&self, features: &[T], bins: &mut [B], margin: &mut [T], leaf_values: &mut [T]) {
        assert!(features.len() >= self.num_features, "a row has fewer features than the trees read");
        assert!(bins.len() >= self.row_bins(), "a bin scratch shorter than a row's bins");
        assert!(leaf_values.len() == self.placements.len() && margin.len() == self.base_margin.len());
        #[cfg(target_arch = "x86_64")]
        if self.fused_sum && self.walks_lines() {
            return self.margins_by_lines([features], [margin]);
        }
        // The line kernel computes its table from the values; bins are only needed for trees it does not walk.
        if !self.walks_lines() || !self.line_general_groups.is_empty() {
            self.quantise_row(features, bins, 0, 0);
        }
        let bins = &*bins;
        // With a SIMD kernel only the general-layout lane groups (after the complete ones) are left to walk here.
        let groups = match self.walk_vector_groups(features, bins, leaf_values) {
            true if self.walks_lines() => &self.line_general_groups[..],
            true => &self.lane_groups[self.first_general_group..],
            false => &self.lane_groups[..],
        };
        for group in groups {
            let trees = &group.trees;
            if group.general {
                if trees.len() == LANES {
                    let start = std::array::from_fn(|lane| trees[lane].1 as usize);
                    let reached = self.walk_general::<LANES, 0, 0>(start, group.depth, bins);
                    for ((tree, _, leaves), position) in trees.iter().zip(reached) {
                        leaf_values[*tree as usize] = self.general_leaf(*leaves, position);
                    }
                } else {
                    for (tree, root, leaves) in trees {
                        let [position] = self.walk_general::<1, 0, 0>([*root as usize], group.depth, bins);
                        leaf_values[*tree as usize] = self.general_leaf(*leaves, position);
                    }
                }
                continue;
            }
            let first_leaf = (1usize << group.depth) - 1;
            if trees.len() == LANES {
                let bases = std::array::from_fn(|lane| trees[lane].1 as usize);
                let reached = self.walk_complete::<LANES, 0, 0>(bases, group.depth, bins);
                for ((tree, _, leaves), position) in trees.iter().zip(reached) {
                    leaf_values[*tree as usize] = self.leaf(*leaves as usize + position - first_leaf);
                }
            } else {
                for (tree, splits, leaves) in trees {
                    let [position] = self.walk_complete::<1, 0, 0>([*splits as usize], group.depth, bins);
                    leaf_values[*tree as usize] = self.leaf(*leaves as usize + position - first_leaf);
                }
            }
        }
        self.start_margin(margin);
        if self.single_output {
            let mut sum = margin[0];
            for value in leaf_values.iter() {
                sum += *value;
            }
            margin[0] = sum;
        } else {
            for (value, output) in leaf_values.iter().zip(&self.outputs) {
                margin[*output as usize] += *value;
            }
        }
        self.finish_margin(margin);
    }

    /// Walks the complete-layout trees of one row's `bins` with the SIMD kernel, if the forest has one, writing their
    /// leaf values; returns whether it did.
    #[inline]
    fn walk_vector_groups(&self, features: &[T], row_bins: &[B], leaf_values: &mut [T]) -> bool {
        debug_assert!(row_bins.len() >= self.row_bins() && leaf_values.len() == self.placements.len());
        let splits = self.splits.as_ptr().cast::<u32>();
        let bins = row_bins.as_ptr().cast::<u8>();
        match self.kernel {
            Kernel::Portable => false,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 if self.walks_lines() => {
                self.walk_lines([features], [LeafSink::Values(leaf_values)]);
                true
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => {
                // SAFETY: `use_kernel` only sets a SIMD kernel the CPU supports and only with at most i32::MAX splits;
                // `group_vectors` built the groups over these splits and leaves (every lane a complete-layout tree
                // of the group's depth, its leaf shift mapping the end of a walk to the tree's leaves, its tree
                // index below the number of trees, which `margin_one` asserted is `leaf_values.len()`); `Split` is
                // four bytes, 4-aligned, with `slot` first; `margin_one` asserted `row_bins()` bins, which include
                // GATHER_PADDING slots after the last one a split reads.
                unsafe {
                    if size_of::<B>() == 1 {
                        crate::kernel::walk_avx512::<T, 1>(&self.vector_groups, splits, bins, &self.leaves, leaf_values)
                    } else {
                        crate::kernel::walk_avx512::<T, 2>(&self.vector_groups, splits, bins, &self.leaves, leaf_values)
                    }
                }
                true
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => {
                // SAFETY: as for AVX-512 above.
                unsafe {
                    if size_of::<B>() == 1 {
                        crate::kernel::walk_avx2::<T, 1>(&self.vector_groups, splits, bins, &self.leaves, leaf_values)
                    } else {
                        crate::kernel::walk_avx2::<T, 2>(&self.vector_groups, splits, bins, &self.leaves, leaf_values)
                    }
                }
                true
            }
            #[cfg(not(target_arch = "x86_64"))]
            Kernel::Avx2 | Kernel::Avx512 => unreachable!("no SIMD kernel is supported off x86-64"),
        }
    }

    /// Walks the line kernel's trees for `R` rows (each at least `num_features` long) into their `sinks`: the
    /// values of all trees (as many as trees), or the running sum when every tree is a line tree of one output.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    fn walk_lines<const R: usize>(&self, rows: [&[T]; R], sinks: [LeafSink<'_, T>; R]) {
        assert!(self.walks_lines());
        for (row, sink) in rows.iter().zip(&sinks) {
            assert!(row.len() >= self.num_features);
            match sink {
                LeafSink::Values(values) => assert!(values.len() == self.placements.len()),
                LeafSink::Sum(_) => assert!(self.fused_sum),
            }
        }
        let mut tables = [[0u16; TABLE_SLOTS]; R];
        let constant = 2 * self.num_features;
        for (row, table) in rows.iter().zip(&mut tables) {
            if self.line_features.is_empty() {
                // Many cuts a feature: the binary search beats a scan of the fences.
                table[constant] = B::MAX.widen() as u16;
                for &(feature, start, count) in &self.used_features {
                    let (left, right) = self.value_bins(row[feature as usize], start, count);
                    table[2 * feature as usize] = left.widen() as u16;
                    table[2 * feature as usize + 1] = right.widen() as u16;
                }
                continue;
            }
            // SAFETY: `use_kernel` only sets the AVX-512 kernel where the CPU has its features (it asserts
            // `Kernel::supported`), and builds the line kernel only when a row's 2 * num_features + 1 slots fit
            // TABLE_SLOTS. `T` is f32 or f64; `build_lines` took each used feature's cuts from `cuts` and its fences
            // into `fences`; features are below `num_features` (asserted above).
            unsafe {
                let (cuts, fences, right) = (&self.cuts.values, &self.fences, B::MAX.widen() as u16);
                crate::kernel::line_table_avx512(row, &self.line_features, cuts, fences, right, constant, table)
            };
        }
        // SAFETY: as above; every split's slot is below TABLE_SLOTS (and every rank below LINE_RANK_LIMIT unless the
        // words are wide);
        // `build_lines` copied the trees into `lines` as split words in tiers (the top blocks first, in tree order),
        // with a padding block after the last one; tree indexes are below the number of trees, the values' length
        // (asserted above); a fused sum (asserted above) means `line_trees` are all the trees, in order.
        unsafe {
            let lines = self.lines.as_ptr().cast::<u16>();
            let tables = std::array::from_fn(|row| &tables[row]);
            let walk = match self.wide_lines {
                true => crate::kernel::walk_lines_avx512::<T, R, true>,
                false => crate::kernel::walk_lines_avx512::<T, R, false>,
            };
            walk(&self.line_trees, &self.line_runs, lines, tables, &self.leaves, sinks)
        };
    }

    /// The margins of `R` rows by the line kernel, when it walks every tree of a single output (`fused_sum`).
    #[cfg(target_arch = "x86_64")]
    #[inline]
    fn margins_by_lines<const R: usize>(&self, rows: [&[T]; R], margins: [&mut [T]; R]) {
        let mut margins = margins;
        let mut sums = [T::ZERO; R];
        for (margin, sum) in margins.iter_mut().zip(&mut sums) {
            self.start_margin(margin);
            *sum = margin[0];
        }
        let sinks = sums.each_mut().map(LeafSink::Sum);
        self.walk_lines(rows, sinks);
        for (margin, sum) in margins.iter_mut().zip(sums) {
            margin[0] = sum;
            self.finish_margin(margin);
        }
    }

    /// Margins of a block of at most [`ROW_BLOCK`] rows (`features` row-major, `width` a row). `bins` (scratch)
    /// holds `row_bins()` slots for each of [`ROW_BLOCK`] rows.
    pub fn margin_block(&self, features: &[T], width: usize, count: usize, bins: &mut [B], margins: &mut [T]) {
        assert!(width >= self.num_features && count <= ROW_BLOCK, "a block narrower than the trees read");
        assert!(features.len() >= count * width && margins.len() >= count * self.base_margin.len());
        assert!(bins.len() >= self.row_bins() << BLOCK_SHIFT, "a bin scratch shorter than a block's bins");
        // Where the compile step found it faster, the line kernel walks the rows, two at a time.
        #[cfg(target_arch = "x86_64")]
        if self.batches_by_lines() {
            // Two rows at a time: their walks are independent, so the CPU overlaps them.
            let mut rows = features.chunks(width).take(count);
            let mut margins = margins.chunks_mut(self.base_margin.len()).take(count);
            while let (Some(first), Some(margin)) = (rows.next(), margins.next()) {
                match (rows.next(), margins.next()) {
                    (Some(second), Some(other)) => self.margins_by_lines([first, second], [margin, other]),
                    _ => self.margins_by_lines([first], [margin]),
                }
            }
            return;
        }
        for row in 0..count {
            self.quantise_row(&features[row * width..], bins, row, BLOCK_SHIFT);
        }
        let bins = &*bins;
        let outputs = self.base_margin.len();
        for margin in margins.chunks_mut(outputs).take(count) {
            self.start_margin(margin);
        }
        const BLOCK: u32 = BLOCK_SHIFT;
        for (placement, output) in self.placements.iter().zip(&self.outputs) {
            let output = *output as usize;
            let mut row = 0;
            // Rows in groups of `LANES` walk the tree together, the rest one by one.
            while row < count {
                let lanes = if count - row >= LANES { LANES } else { 1 };
                let bins = &bins[row..];
                match *placement {
                    Placement::Complete { splits, leaves, depth } => {
                        let first_leaf = (1usize << depth) - 1;
                        let leaf = |position: usize| self.leaf(leaves as usize + position - first_leaf);
                        if lanes == LANES {
                            let bases = [splits as usize; LANES];
                            let reached = self.walk_complete::<LANES, BLOCK, 1>(bases, depth, bins);
                            for (lane, position) in reached.into_iter().enumerate() {
                                margins[(row + lane) * outputs + output] += leaf(position);
                            }
                        } else {
                            let [position] = self.walk_complete::<1, BLOCK, 1>([splits as usize], depth, bins);
                            margins[row * outputs + output] += leaf(position);
                        }
                    }
                    Placement::General { root, depth, leaves } => {
                        if lanes == LANES {
                            let reached = self.walk_general::<LANES, BLOCK, 1>([root as usize; LANES], depth, bins);
                            for (lane, position) in reached.into_iter().enumerate() {
                                margins[(row + lane) * outputs + output] += self.general_leaf(leaves, position);
                            }
                        } else {
                            let [position] = self.walk_general::<1, BLOCK, 1>([root as usize], depth, bins);
                            margins[row * outputs + output] += self.general_leaf(leaves, position);
                        }
                    }
                }
                row += lanes;
            }
        }
        for margin in margins.chunks_mut(outputs).take(count) {
            self.finish_margin(margin);
        }
    }

    /// Moves one cut, so that tests can check that verification notices a wrong evaluator.
    #[cfg(test)]
    pub(crate) fn corrupt_for_test(&mut self) {
        let feature = (0..self.num_features).find(|feature| !self.cuts.of(*feature).is_empty());
        if let Some(feature) = feature {
            let last = self.cuts.start[feature + 1] as usize - 1;
            self.cuts.values[last] = T::INFINITY;
        }
    }
}

/// The levels the line kernel walks a tree of `depth` levels with: up to 8, the next multiple of [`TIER_DEPTH`], so
/// that every block is full and trees of depths 5 to 8 walk together; the levels added are padding splits at the
/// bottom, so the leaf is the walk's path without its last bits. Deeper trees keep their depth (a last tier of
/// 256 full blocks would take 8 KiB a tree).
fn walked_depth(depth: u32) -> u32 {
    if depth <= 2 * TIER_DEPTH { depth.next_multiple_of(TIER_DEPTH) } else { depth }
}

/// Copies a complete tree (`heap`: its splits in heap order, `depth` levels) into `lines` as split words, in the
/// tier layout of [`walked_depth`] levels (the levels added are padding splits, word 0): its top block into block
/// `top` (reserved), its lower tiers' blocks appended. Narrow words are `slot | rank << SLOT_BITS`, one
/// [`LineBlock`] a block; a `wide` block is two `LineBlock`s, its 16 slot words then its 16 rank words. Returns
/// `rest`: slot `s >= 16` of the layout is word `rest + s`.
fn push_tiers(lines: &mut Vec<LineBlock>, top: usize, heap: &[Split], depth: u32, wide: bool) -> u32 {
    let layout = TierLayout::of(walked_depth(depth));
    let per_block = if wide { 2 } else { 1 };
    debug_assert!((top + 1) * per_block <= lines.len() && lines.len().is_multiple_of(per_block));
    let rest = lines.len() / per_block * BLOCK_WORDS - BLOCK_WORDS;
    // Padding slots (the 16th of each full block) are never read as splits of the path.
    lines.resize(lines.len() + layout.blocks().saturating_sub(1) * per_block, LineBlock([0; BLOCK_WORDS]));
    for level in 0..depth {
        for position in 0..1usize << level {
            let at = layout.address(level, position);
            let at = if at < BLOCK_WORDS { top * BLOCK_WORDS + at } else { rest + at };
            let Split { slot, rank } = heap[(1 << level) - 1 + position];
            debug_assert!((slot as usize) < TABLE_SLOTS && (wide || (rank as usize) < LINE_RANK_LIMIT));
            if wide {
                // A wide block is two `LineBlock`s: its 16 slot words, then its 16 rank words.
                let (block, offset) = (at / BLOCK_WORDS, at % BLOCK_WORDS);
                lines[2 * block].0[offset] = slot;
                lines[2 * block + 1].0[offset] = rank;
            } else {
                lines[at / BLOCK_WORDS].0[at % BLOCK_WORDS] = slot | (rank << SLOT_BITS);
            }
        }
    }
    rest as u32
}

/// The number of `cuts` (ascending) that are `<= value`, by a binary search without data-dependent branches (a
/// row's values are unpredictable, so a branchy search would mispredict about once per feature).
#[inline(always)]
fn count_at_most<T: Float>(cuts: &[T], value: T) -> usize {
    if cuts.is_empty() {
        return 0;
    }
    // Invariant: every cut before `low` is <= value, the answer lies in [low, low + size], low + size <= len.
    let (mut low, mut size) = (0usize, cuts.len());
    while size > 1 {
        let half = size / 2;
        debug_assert!(low + half - 1 < cuts.len());
        // SAFETY: 1 <= half < size, so low + half - 1 < low + size <= cuts.len().
        let probe = unsafe { *cuts.get_unchecked(low + half - 1) };
        // A conditional move, not a branch (the compiler turns a plain `if`, even a mask, into a branch here).
        low = std::hint::select_unpredictable(probe <= value, low + half, low);
        size -= half;
    }
    debug_assert!(low < cuts.len());
    // SAFETY: size is 1 here, so low < low + size <= cuts.len().
    low + usize::from(unsafe { *cuts.get_unchecked(low) } <= value)
}

/// The bin at `index` of a row's or a block's bins.
#[inline(always)]
fn bin_at<B: Copy>(bins: &[B], index: usize) -> B {
    debug_assert!(index < bins.len());
    // SAFETY: every slot a split or leaf stores is at most 2 * num_features (split features are below num_features
    // by `Model::validate`; padding splits read slot 0, which exists as `Cuts::collect` refuses zero features;
    // general leaves read the constant slot 2 * num_features), so below `row_bins()`. One row reads `bins[slot]`; a
    // block walk gets the block's bins from its first row `row` on and reads `(slot << BLOCK_SHIFT) + lane` with
    // `row + lane < ROW_BLOCK = 1 << BLOCK_SHIFT`, inside the `row_bins()` slots times `ROW_BLOCK` that the entry
    // point asserts the block's bins hold (one row: `row_bins()`).
    unsafe { *bins.get_unchecked(index) }
}
