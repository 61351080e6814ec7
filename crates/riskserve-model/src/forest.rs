//! Compiled tree ensembles: shallow trees in a branch-free complete layout walked in lockstep
//! lanes, other trees (deep, unbalanced or categorical) as packed pre-order nodes.
//!
//! Two layouts, chosen per tree at compile time:
//! - **complete** (after VPred and XGBoost's array layout): a tree of depth `d` is padded to a
//!   complete binary tree stored in heap order — `2^d - 1` splits (threshold and feature, 8 bytes
//!   in f32) and `2^d` leaf values, no child pointers. Walking it is `d` steps of
//!   `index = 2 * index + 1 + go_right` with no data-dependent branch, so several walks (rows of a
//!   block, or trees for one row) interleave and the CPU overlaps their loads.
//! - **general** (after ONNX Runtime's pre-order layout): 12-byte (f32) or 16-byte (f64) nodes,
//!   the left child directly after its parent, only the offset of the right child stored. A leaf
//!   steps to itself, so a walk is also a fixed number of branch-free steps (the tree's depth)
//!   and walks interleave the same way.
//!
//! Sums are always taken in the ensemble's tree order, whatever the layout or walk order, so
//! that f32 results are bit-identical to XGBoost's.

#![allow(unsafe_code, reason = "the walks index validated arrays without bounds checks; see `Forest::compile`")]

use crate::ir::{Aggregation, Direction, Node, SplitTest, Tree, TreeEnsemble};

/// Trees walked together for one row.
pub(crate) const LANES: usize = 8;
/// Rows walked together through one tree in a batch.
pub const ROW_BLOCK: usize = 64;
/// Deepest tree stored in the complete layout.
pub(crate) const MAX_COMPLETE_DEPTH: usize = 10;
/// A tree is padded to the complete layout only if that at most multiplies its leaves by this.
pub(crate) const MAX_PADDING: usize = 4;

/// The numbers a tree engine works in: f32 for XGBoost-style models, f64 for LightGBM-style.
pub trait Float:
    Copy + PartialOrd + std::ops::AddAssign + std::ops::Div<Output = Self> + std::fmt::Debug + Send + Sync + 'static
{
    const ZERO: Self;
    const INFINITY: Self;
    fn from_f64(value: f64) -> Self;
    fn from_count(count: usize) -> Self;
    fn is_nan(self) -> bool;
    /// The integer code of a categorical value, or `None` when it is negative or too large.
    fn category_code(self) -> Option<u32>;
}

impl Float for f32 {
    const ZERO: Self = 0.0;
    const INFINITY: Self = f32::INFINITY;
    fn from_f64(value: f64) -> Self {
        value as f32
    }
    fn from_count(count: usize) -> Self {
        count as f32
    }
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    fn category_code(self) -> Option<u32> {
        // XGBoost refuses codes from 2^24 on (they are not exact in f32).
        (0.0..16_777_216.0).contains(&self).then_some(self as u32)
    }
}

impl Float for f64 {
    const ZERO: Self = 0.0;
    const INFINITY: Self = f64::INFINITY;
    fn from_f64(value: f64) -> Self {
        value
    }
    fn from_count(count: usize) -> Self {
        count as f64
    }
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    fn category_code(self) -> Option<u32> {
        // LightGBM truncates toward zero first, so (-1, 0) reads as category 0.
        (self > -1.0 && self < 2_147_483_648.0).then_some(self as u32)
    }
}

const LEAF: u32 = 1 << 31;
const DEFAULT_LEFT: u32 = 1 << 30;
const CATEGORICAL: u32 = 1 << 29;
const IN_SET_LEFT: u32 = 1 << 28;
const FEATURE_MASK: u32 = (1 << 28) - 1;

/// A general-layout node: the left child is the next node.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct PackedNode<T> {
    /// The threshold of a numeric split, the value of a leaf; unused for categorical splits.
    value: T,
    /// Feature index and the flags above.
    feature: u32,
    /// Offset from this node to its right child (0 for a leaf, which steps to itself), or
    /// (categorical) the index of the category set, which holds the right child.
    right: u32,
}

/// A complete-layout split: 8 bytes in f32, so one load brings both halves.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct Split<T> {
    threshold: T,
    /// Feature index and [`DEFAULT_LEFT`].
    feature: u32,
}

/// Where one tree lives.
#[derive(Debug, Clone, Copy)]
enum Placement {
    /// Splits from `splits`, leaves from `leaves`, `depth` levels.
    Complete {
        splits: u32,
        leaves: u32,
        depth: u32,
    },
    General {
        root: u32,
        depth: u32,
    },
}

/// Up to `LANES` trees of one layout, walked together for one row for `depth` steps.
#[derive(Debug, Clone)]
struct LaneGroup {
    depth: u32,
    general: bool,
    /// (tree index, first split, first leaf) of complete trees; (tree index, root, 0) of general.
    trees: Vec<(u32, u32, u32)>,
}

/// A compiled ensemble.
#[derive(Debug)]
pub struct Forest<T> {
    placements: Vec<Placement>,
    outputs: Vec<u32>,
    splits: Vec<Split<T>>,
    leaves: Vec<T>,
    nodes: Vec<PackedNode<T>>,
    category_sets: Vec<(Vec<u32>, u32)>,
    lane_groups: Vec<LaneGroup>,
    base_margin: Vec<T>,
    /// For [`Aggregation::Mean`], the number of trees of each output.
    divisors: Option<Vec<T>>,
    single_output: bool,
    /// Features the trees read: every feature index in the compiled trees is below it.
    num_features: usize,
    /// Nodes of the source trees (before padding), for the memory report.
    source_nodes: usize,
}

impl<T: Float> Forest<T> {
    /// Compiles a validated ensemble.
    pub fn compile(ensemble: &TreeEnsemble) -> Forest<T> {
        let mut forest = Forest {
            placements: Vec::with_capacity(ensemble.trees.len()),
            outputs: ensemble.trees.iter().map(|tree| tree.output).collect(),
            splits: Vec::new(),
            leaves: Vec::new(),
            nodes: Vec::new(),
            category_sets: Vec::new(),
            lane_groups: Vec::new(),
            base_margin: ensemble.base_margin.iter().map(|value| T::from_f64(*value)).collect(),
            divisors: None,
            single_output: ensemble.num_outputs == 1,
            num_features: ensemble.num_features,
            source_nodes: ensemble.trees.iter().map(|tree| tree.nodes.len()).sum(),
        };
        for tree in &ensemble.trees {
            let depth = tree.depth();
            let leaf_count = tree.nodes.iter().filter(|node| matches!(node, Node::Leaf { .. })).count();
            let categorical =
                tree.nodes.iter().any(|node| matches!(node, Node::Split { test: SplitTest::CategoryIn { .. }, .. }));
            let placement =
                if !categorical && depth <= MAX_COMPLETE_DEPTH && (1usize << depth) <= MAX_PADDING * leaf_count {
                    forest.push_complete(tree, depth)
                } else {
                    forest.push_general(tree, depth)
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
        forest
    }

    /// Length of the margin vector.
    pub fn num_outputs(&self) -> usize {
        self.base_margin.len()
    }

    /// Number of trees.
    pub fn num_trees(&self) -> usize {
        self.placements.len()
    }

    /// Nodes of the source trees.
    pub fn source_nodes(&self) -> usize {
        self.source_nodes
    }

    /// Trees in the complete layout.
    pub fn complete_trees(&self) -> usize {
        self.placements.iter().filter(|placement| matches!(placement, Placement::Complete { .. })).count()
    }

    /// Resident bytes of the compiled trees.
    pub fn resident_bytes(&self) -> usize {
        self.splits.len() * size_of::<Split<T>>()
            + self.leaves.len() * size_of::<T>()
            + self.nodes.len() * size_of::<PackedNode<T>>()
            + self.category_sets.iter().map(|(set, _)| set.len() * 4 + 32).sum::<usize>()
    }

    fn push_complete(&mut self, tree: &Tree, depth: usize) -> Placement {
        let splits = self.splits.len();
        let leaves = self.leaves.len();
        let split_count = (1usize << depth) - 1;
        self.splits.resize(splits + split_count, Split { threshold: T::INFINITY, feature: 0 });
        self.leaves.resize(leaves + (1 << depth), T::ZERO);
        // (source node, heap position, level)
        let mut stack = vec![(0u32, 0usize, 0usize)];
        while let Some((index, position, level)) = stack.pop() {
            match &tree.nodes[index as usize] {
                Node::Leaf { value } => {
                    // A leaf above the last level fills every leaf slot below it; the padding
                    // splits above those slots keep threshold +inf, so either way leads here.
                    let span = 1usize << (depth - level);
                    let first = (position + 1) * span - 1 - split_count;
                    self.leaves[leaves + first..leaves + first + span].fill(T::from_f64(*value));
                }
                Node::Split { feature, test, left, right, missing } => {
                    let SplitTest::LessThan(threshold) = test else {
                        unreachable!("categorical trees use the general layout")
                    };
                    self.splits[splits + position].threshold = T::from_f64(*threshold);
                    self.splits[splits + position].feature =
                        *feature | if *missing == Direction::Left { DEFAULT_LEFT } else { 0 };
                    stack.push((*left, 2 * position + 1, level + 1));
                    stack.push((*right, 2 * position + 2, level + 1));
                }
            }
        }
        Placement::Complete { splits: splits as u32, leaves: leaves as u32, depth: depth as u32 }
    }

    /// Appends a tree in pre-order, so that a left child directly follows its parent.
    fn push_general(&mut self, tree: &Tree, depth: usize) -> Placement {
        let root = self.nodes.len() as u32;
        // (source index, position of the parent whose right child this is)
        let mut stack: Vec<(u32, Option<usize>)> = vec![(0, None)];
        while let Some((index, parent)) = stack.pop() {
            let position = self.nodes.len() as u32;
            if let Some(parent) = parent {
                if self.nodes[parent].feature & CATEGORICAL != 0 {
                    let set = self.nodes[parent].right as usize;
                    self.category_sets[set].1 = position;
                } else {
                    self.nodes[parent].right = position - parent as u32;
                }
            }
            match &tree.nodes[index as usize] {
                Node::Leaf { value } => {
                    self.nodes.push(PackedNode { value: T::from_f64(*value), feature: LEAF, right: 0 });
                }
                Node::Split { feature, test, left, right, missing } => {
                    let mut flags = *feature;
                    if *missing == Direction::Left {
                        flags |= DEFAULT_LEFT;
                    }
                    let (value, right_slot) = match test {
                        SplitTest::LessThan(threshold) => (T::from_f64(*threshold), 0),
                        SplitTest::CategoryIn { categories, in_set } => {
                            flags |= CATEGORICAL;
                            if *in_set == Direction::Left {
                                flags |= IN_SET_LEFT;
                            }
                            self.category_sets.push((categories.clone(), 0));
                            (T::ZERO, (self.category_sets.len() - 1) as u32)
                        }
                    };
                    self.nodes.push(PackedNode { value, feature: flags, right: right_slot });
                    // Right is pushed first so that left is placed next.
                    stack.push((*right, Some(position as usize)));
                    stack.push((*left, None));
                }
            }
        }
        Placement::General { root, depth: depth as u32 }
    }

    /// Groups trees into lanes for the one-row path: complete trees by equal depth, general
    /// trees sorted by depth so that a group's walk is as short as its deepest tree allows.
    fn group_lanes(&mut self) {
        let mut complete: Vec<Vec<(u32, u32, u32)>> = vec![Vec::new(); MAX_COMPLETE_DEPTH + 1];
        let mut general: Vec<(u32, u32, u32)> = Vec::new();
        for (index, placement) in self.placements.iter().enumerate() {
            match *placement {
                Placement::Complete { splits, leaves, depth } => {
                    complete[depth as usize].push((index as u32, splits, leaves))
                }
                Placement::General { root, depth } => general.push((depth, index as u32, root)),
            }
        }
        for (depth, trees) in complete.into_iter().enumerate() {
            for chunk in trees.chunks(LANES) {
                self.lane_groups.push(LaneGroup { depth: depth as u32, general: false, trees: chunk.to_vec() });
            }
        }
        general.sort_unstable();
        for chunk in general.chunks(LANES) {
            let depth = chunk.iter().map(|(depth, _, _)| *depth).max().unwrap_or(0);
            let trees = chunk.iter().map(|(_, tree, root)| (*tree, *root, 0)).collect();
            self.lane_groups.push(LaneGroup { depth, general: true, trees });
        }
    }

    #[inline(always)]
    #[allow(clippy::neg_cmp_op_on_partial_ord, reason = "NaN must fail the comparison")]
    fn go_right(value: T, threshold: T, flags: u32) -> bool {
        // NaN fails `<`, so it goes right unless the node sends missing values left.
        !(value < threshold) ^ (value.is_nan() & (flags & DEFAULT_LEFT != 0))
    }

    /// The complete-layout split at `index`.
    #[inline(always)]
    fn split(&self, index: usize) -> Split<T> {
        debug_assert!(index < self.splits.len());
        // SAFETY: a complete walk of a tree at `splits` with depth `d` reads positions below
        // 2^d - 1 during its d steps, and `push_complete` reserved exactly those slots.
        unsafe { *self.splits.get_unchecked(index) }
    }

    /// The complete-layout leaf slot at `index`.
    #[inline(always)]
    fn leaf(&self, index: usize) -> T {
        debug_assert!(index < self.leaves.len());
        // SAFETY: after d steps a position lies in [2^d - 1, 2^(d+1) - 2], which maps onto the
        // 2^d leaf slots `push_complete` reserved for the tree.
        unsafe { *self.leaves.get_unchecked(index) }
    }

    /// The general-layout node at `index`.
    #[inline(always)]
    fn node(&self, index: usize) -> PackedNode<T> {
        debug_assert!(index < self.nodes.len());
        // SAFETY: walks start at a tree's root and follow offsets written by `push_general` from
        // a validated tree (every child inside the tree); leaves step to themselves.
        unsafe { *self.nodes.get_unchecked(index) }
    }

    /// One step of a general-layout walk over the row starting at `row_start`: the next node (a
    /// leaf steps to itself).
    #[inline(always)]
    /// Also says whether `index` was a leaf (then the step stayed put).
    fn general_step(&self, index: usize, features: &[T], row_start: usize) -> (usize, bool) {
        let node = self.node(index);
        let flags = node.feature;
        let value = feature_value_at(features, row_start, flags);
        if flags & CATEGORICAL != 0 {
            return (self.categorical_next(index, flags, node.right, value), false);
        }
        let is_leaf = flags & LEAF != 0;
        let left_offset = (!is_leaf) as usize;
        (index + if Self::go_right(value, node.value, flags) { node.right as usize } else { left_offset }, is_leaf)
    }

    /// Walks `N` complete-layout lanes for `depth` steps: lane `l` reads the tree whose splits
    /// start at `split_base[l]` and the row starting at `row_start[l]`. Returns heap positions.
    /// The lanes are independent, so the CPU overlaps their loads; with `N` fixed the loop
    /// unrolls and the positions stay in registers.
    #[inline(always)]
    #[allow(clippy::needless_range_loop, reason = "lanes advance together; indexing keeps them in registers")]
    fn walk_complete<const N: usize>(
        &self,
        split_base: [usize; N],
        row_start: [usize; N],
        depth: u32,
        features: &[T],
    ) -> [usize; N] {
        let mut position = [0usize; N];
        for _ in 0..depth {
            for lane in 0..N {
                let split = self.split(split_base[lane] + position[lane]);
                let value = feature_value_at(features, row_start[lane], split.feature);
                position[lane] =
                    2 * position[lane] + 1 + Self::go_right(value, split.threshold, split.feature) as usize;
            }
        }
        position
    }

    /// Walks `N` general-layout lanes from `start` for at most `depth` steps; returns the leaves
    /// reached. Unbalanced trees (LightGBM grows leaf-wise) are much deeper than most paths, so
    /// the walk stops at the first step that finds every lane already at a leaf.
    #[inline(always)]
    #[allow(clippy::needless_range_loop, reason = "lanes advance together; indexing keeps them in registers")]
    fn walk_general<const N: usize>(
        &self,
        start: [usize; N],
        row_start: [usize; N],
        depth: u32,
        features: &[T],
    ) -> [usize; N] {
        let mut position = start;
        for _ in 0..depth {
            let mut all_leaves = true;
            for lane in 0..N {
                let (next, is_leaf) = self.general_step(position[lane], features, row_start[lane]);
                position[lane] = next;
                all_leaves &= is_leaf;
            }
            if all_leaves {
                break;
            }
        }
        position
    }

    #[cold]
    fn categorical_next(&self, index: usize, flags: u32, set: u32, value: T) -> usize {
        let (categories, right) = &self.category_sets[set as usize];
        let left = if value.is_nan() {
            flags & DEFAULT_LEFT != 0
        } else {
            let in_set = value.category_code().is_some_and(|code| categories.binary_search(&code).is_ok());
            in_set == (flags & IN_SET_LEFT != 0)
        };
        if left { index + 1 } else { *right as usize }
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

    /// The margin of one row. `leaf_values` holds one value per tree (scratch).
    pub fn margin_one(&self, features: &[T], margin: &mut [T], leaf_values: &mut [T]) {
        assert!(features.len() >= self.num_features, "a row has fewer features than the trees read");
        assert!(leaf_values.len() == self.placements.len() && margin.len() == self.base_margin.len());
        for group in &self.lane_groups {
            let trees = &group.trees;
            if group.general {
                let leaves: &mut dyn FnMut(usize, usize) = &mut |lane, position| {
                    leaf_values[trees[lane].0 as usize] = self.node(position).value;
                };
                if trees.len() == LANES {
                    let start = std::array::from_fn(|lane| trees[lane].1 as usize);
                    let reached = self.walk_general::<LANES>(start, [0; LANES], group.depth, features);
                    reached.iter().enumerate().for_each(|(lane, position)| leaves(lane, *position));
                } else {
                    for (lane, (_, root, _)) in trees.iter().enumerate() {
                        let [reached] = self.walk_general::<1>([*root as usize], [0], group.depth, features);
                        leaves(lane, reached);
                    }
                }
                continue;
            }
            let first_leaf = (1usize << group.depth) - 1;
            if trees.len() == LANES {
                let bases = std::array::from_fn(|lane| trees[lane].1 as usize);
                let reached = self.walk_complete::<LANES>(bases, [0; LANES], group.depth, features);
                for ((tree, _, leaves), position) in trees.iter().zip(reached) {
                    leaf_values[*tree as usize] = self.leaf(*leaves as usize + position - first_leaf);
                }
            } else {
                for (tree, splits, leaves) in trees {
                    let [position] = self.walk_complete::<1>([*splits as usize], [0], group.depth, features);
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

    /// Margins of a block of at most [`ROW_BLOCK`] rows (`features` row-major, `width` a row):
    /// every tree runs over the whole block before the next tree, rows walking in lockstep.
    pub fn margin_block(&self, features: &[T], width: usize, count: usize, margins: &mut [T]) {
        assert!(width >= self.num_features && count <= ROW_BLOCK, "a block narrower than the trees read");
        assert!(features.len() >= count * width && margins.len() >= count * self.base_margin.len());
        let outputs = self.base_margin.len();
        for margin in margins.chunks_mut(outputs).take(count) {
            self.start_margin(margin);
        }
        for (placement, output) in self.placements.iter().zip(&self.outputs) {
            let output = *output as usize;
            let mut row = 0;
            // Rows in groups of `LANES` walk the tree together, the rest one by one.
            while row < count {
                let lanes = if count - row >= LANES { LANES } else { 1 };
                match *placement {
                    Placement::Complete { splits, leaves, depth } => {
                        let first_leaf = (1usize << depth) - 1;
                        let mut add = |lane: usize, position: usize| {
                            margins[(row + lane) * outputs + output] +=
                                self.leaf(leaves as usize + position - first_leaf);
                        };
                        if lanes == LANES {
                            let starts = std::array::from_fn(|lane| (row + lane) * width);
                            let reached =
                                self.walk_complete::<LANES>([splits as usize; LANES], starts, depth, features);
                            reached.iter().enumerate().for_each(|(lane, position)| add(lane, *position));
                        } else {
                            let [position] = self.walk_complete::<1>([splits as usize], [row * width], depth, features);
                            add(0, position);
                        }
                    }
                    Placement::General { root, depth } => {
                        let mut add = |lane: usize, position: usize| {
                            margins[(row + lane) * outputs + output] += self.node(position).value;
                        };
                        if lanes == LANES {
                            let starts = std::array::from_fn(|lane| (row + lane) * width);
                            let reached = self.walk_general::<LANES>([root as usize; LANES], starts, depth, features);
                            reached.iter().enumerate().for_each(|(lane, position)| add(lane, *position));
                        } else {
                            let [position] = self.walk_general::<1>([root as usize], [row * width], depth, features);
                            add(0, position);
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
}

/// The value of the feature that `flags` names, in the row starting at `row_start`.
#[inline(always)]
fn feature_value_at<T: Copy>(features: &[T], row_start: usize, flags: u32) -> T {
    let index = row_start + (flags & FEATURE_MASK) as usize;
    debug_assert!(index < features.len());
    // SAFETY: `Model::validate` keeps every split's feature below the ensemble's feature count;
    // padding splits and leaves read feature 0, and exist only in trees with a real split (so
    // the count is at least 1). The public entry points assert that every row they walk holds
    // at least `num_features` values.
    unsafe { *features.get_unchecked(index) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Precision;

    /// A small deterministic generator (xorshift), so the tests need no dependency.
    struct Random(u64);
    impl Random {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, bound: usize) -> usize {
            (self.next() % bound as u64) as usize
        }
        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// A random tree of at most `depth` levels; leaves appear early with some probability, and
    /// some splits are categorical when `categorical` is set.
    fn random_tree(random: &mut Random, depth: usize, features: usize, categorical: bool, output: u32) -> Tree {
        let mut nodes = vec![Node::Leaf { value: 0.0 }];
        let mut pending = vec![(0usize, 0usize)];
        while let Some((index, level)) = pending.pop() {
            if level == depth || (level > 1 && random.below(4) == 0) {
                nodes[index] = Node::Leaf { value: (random.unit() - 0.5) as f32 as f64 };
                continue;
            }
            let left = nodes.len();
            nodes.push(Node::Leaf { value: 0.0 });
            nodes.push(Node::Leaf { value: 0.0 });
            let test = if categorical && random.below(3) == 0 {
                let mut categories: Vec<u32> = (0..random.below(4) + 1).map(|_| random.below(6) as u32).collect();
                categories.sort_unstable();
                categories.dedup();
                SplitTest::CategoryIn {
                    categories,
                    in_set: if random.below(2) == 0 { Direction::Left } else { Direction::Right },
                }
            } else {
                SplitTest::LessThan((random.unit() * 2.0 - 1.0) as f32 as f64)
            };
            nodes[index] = Node::Split {
                feature: random.below(features) as u32,
                test,
                left: left as u32,
                right: left as u32 + 1,
                missing: if random.below(2) == 0 { Direction::Left } else { Direction::Right },
            };
            pending.push((left, level + 1));
            pending.push((left + 1, level + 1));
        }
        Tree { nodes, output, cover: None }
    }

    /// The IR's semantics, walked directly.
    fn reference_leaf(tree: &Tree, row: &[f64]) -> f64 {
        let mut index = 0;
        loop {
            match &tree.nodes[index] {
                Node::Leaf { value } => return *value,
                Node::Split { feature, test, left, right, missing } => {
                    let value = row[*feature as usize] as f32 as f64;
                    let direction = if value.is_nan() {
                        *missing
                    } else {
                        match test {
                            SplitTest::LessThan(threshold) => {
                                if value < *threshold {
                                    Direction::Left
                                } else {
                                    Direction::Right
                                }
                            }
                            SplitTest::CategoryIn { categories, in_set } => {
                                let code = (value >= 0.0).then_some(value as u32);
                                let found = code.is_some_and(|code| categories.contains(&code));
                                match (found, in_set) {
                                    (true, side) => *side,
                                    (false, Direction::Left) => Direction::Right,
                                    (false, Direction::Right) => Direction::Left,
                                }
                            }
                        }
                    };
                    index = if direction == Direction::Left { *left } else { *right } as usize;
                }
            }
        }
    }

    fn random_row(random: &mut Random, features: usize) -> Vec<f64> {
        (0..features)
            .map(|_| match random.below(10) {
                0 => f64::NAN,
                1 => random.below(6) as f64,
                _ => ((random.unit() * 2.2 - 1.1) as f32) as f64,
            })
            .collect()
    }

    #[test]
    fn both_layouts_follow_the_representation() {
        let mut random = Random(0x9e37_79b9_7f4a_7c15);
        let features = 7;
        for (depth, categorical, outputs) in [(3, false, 1), (6, false, 1), (9, true, 3), (14, false, 2), (5, true, 1)]
        {
            let trees: Vec<Tree> = (0..40)
                .map(|index| random_tree(&mut random, depth, features, categorical, (index % outputs) as u32))
                .collect();
            let ensemble = TreeEnsemble {
                trees,
                num_outputs: outputs,
                base_margin: vec![0.25; outputs],
                aggregation: Aggregation::Sum,
                precision: Precision::F32,
                num_features: features,
            };
            let forest = Forest::<f32>::compile(&ensemble);
            let complete =
                forest.placements.iter().filter(|placement| matches!(placement, Placement::Complete { .. })).count();
            match depth {
                3 | 6 => assert!(complete > 0, "shallow trees use the complete layout"),
                14 => assert!(complete < forest.num_trees(), "deep trees use the general layout"),
                _ => {}
            }
            let rows: Vec<Vec<f64>> = (0..150).map(|_| random_row(&mut random, features)).collect();
            let block: Vec<f32> = rows.iter().flatten().map(|value| *value as f32).collect();
            let mut block_margins = vec![0f32; ROW_BLOCK * outputs];
            let mut leaf_values = vec![0f32; forest.num_trees()];
            for (block_index, chunk) in block.chunks(ROW_BLOCK * features).enumerate() {
                let count = chunk.len() / features;
                forest.margin_block(chunk, features, count, &mut block_margins);
                for row in 0..count {
                    let source = &rows[block_index * ROW_BLOCK + row];
                    let mut expected = vec![0.25f32; outputs];
                    for tree in &ensemble.trees {
                        expected[tree.output as usize] += reference_leaf(tree, source) as f32;
                    }
                    let mut margin = vec![0f32; outputs];
                    forest.margin_one(&chunk[row * features..(row + 1) * features], &mut margin, &mut leaf_values);
                    assert_eq!(margin, expected, "one row, depth {depth}");
                    assert_eq!(
                        &block_margins[row * outputs..(row + 1) * outputs],
                        expected.as_slice(),
                        "block, depth {depth}"
                    );
                }
            }
        }
    }
}
