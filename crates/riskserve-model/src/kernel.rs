//! SIMD kernels for the quantised one-row walk (AVX-512 line kernel, AVX-512 and AVX2 gathers) and the CPU-feature detection that decides which may run, with the portable scalar walk as the fallback.
//!
//! **Line kernel** (AVX-512, at most [`TABLE_SLOTS`] bin slots a row): see [`walk_lines_avx512`]; a whole 4-level
//! block of two trees is decided per compare (16-bit split words; 32-bit ones for ranks past [`LINE_RANK_LIMIT`]),
//! with the row's bins held in registers.
//!
//! **Gather kernels**: a quantised complete-layout step is `p = 2p + 1 + (bins[slot(p)] > rank(p))` (see `quantised.rs`). For one row,
//! every tree's walk is independent, so a vector register holds one tree per lane: one gather fetches the 16 (or 8)
//! splits `{slot, rank}` the lanes stand on, a second gathers the row's bins at those slots, one unsigned compare
//! gives the directions, and an add moves every lane one level down. A group's trees have the same depth, so the
//! walk is exactly `depth` such steps with no branch on the data. Lanes track absolute split indexes `a = base + p`
//! as the scalar walk does: the child is `2a + (1 - base) + right`.
//!
//! The kernels only find leaves; leaf values are summed in tree order (by the caller, or by the line kernel itself
//! when it walks every tree in order), so results stay bit-identical to the reference walk. Which kernel runs is decided once, by the compile step, from
//! `is_x86_feature_detected!`; a kernel is only ever called on a CPU that has its features.

#![allow(
    unsafe_code,
    reason = "AVX2/AVX-512 intrinsics and gathers from validated arrays; see the SAFETY notes of each kernel"
)]

use serde::Serialize;

use crate::forest::Float;

/// Trees of one vector group (the AVX-512 width; AVX2 walks a group as two halves).
pub const GROUP_LANES: usize = 16;

/// Levels of one block of the line kernel's tiered layout (`TierLayout` in `quantised.rs`): 2^4 - 1 split words of
/// 2 bytes fit a 32-byte block, and two trees' blocks one 512-bit register.
pub const TIER_DEPTH: u32 = 4;

/// Split words in one block of the line kernel: `2^TIER_DEPTH` (the splits of [`TIER_DEPTH`] levels and a pad).
pub const BLOCK_WORDS: usize = 1 << TIER_DEPTH;

/// Bytes that a gather may read past a row's last bin: a 4-byte gather at the last `u8` bin reads three more.
pub const GATHER_PADDING: usize = 3;

/// An instruction-set level a quantised forest can walk one row with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kernel {
    /// Scalar code, 8 trees interleaved: any CPU.
    Portable,
    /// 8 trees per gather (`vpgatherdd ymm`): x86-64 with AVX2.
    Avx2,
    /// x86-64 with AVX-512F, BW and CD (and BMI1, BMI2, POPCNT): a row's bins in registers and a tree block per
    /// compare when a row has at most 64 bin slots, else 16 trees per gather (`vpgatherdd zmm`).
    Avx512,
}

/// Which kernel the compile step should use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KernelChoice {
    /// The widest kernel this CPU runs.
    #[default]
    Auto,
    /// This kernel, or the widest narrower one this CPU runs (the report says so).
    Exactly(Kernel),
}

impl KernelChoice {
    /// Parses `auto`, `portable`, `avx2` or `avx512`.
    pub fn from_name(name: &str) -> Option<KernelChoice> {
        if name == "auto" { Some(KernelChoice::Auto) } else { Kernel::from_name(name).map(KernelChoice::Exactly) }
    }
}

impl Kernel {
    /// Every kernel, narrowest first.
    pub const ALL: [Kernel; 3] = [Kernel::Portable, Kernel::Avx2, Kernel::Avx512];

    pub fn name(self) -> &'static str {
        match self {
            Kernel::Portable => "portable",
            Kernel::Avx2 => "avx2",
            Kernel::Avx512 => "avx512",
        }
    }

    pub fn from_name(name: &str) -> Option<Kernel> {
        Kernel::ALL.into_iter().find(|kernel| kernel.name() == name)
    }

    /// Whether this CPU has the features the kernel needs (checked at run time, once per call).
    pub fn supported(self) -> bool {
        match self {
            Kernel::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512cd")
                    && std::arch::is_x86_feature_detected!("bmi1")
                    && std::arch::is_x86_feature_detected!("bmi2")
                    && std::arch::is_x86_feature_detected!("popcnt")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Kernel::Avx2 | Kernel::Avx512 => false,
        }
    }

    /// The kernels this CPU runs, narrowest first.
    pub fn available() -> Vec<Kernel> {
        Kernel::ALL.into_iter().filter(|kernel| kernel.supported()).collect()
    }

    /// The kernel `choice` resolves to on this CPU, and a note when that is not the one asked for.
    pub fn resolve(choice: KernelChoice) -> (Kernel, Option<String>) {
        let widest = |limit: Kernel| {
            Kernel::ALL
                .into_iter()
                .rev()
                .find(|kernel| *kernel <= limit && kernel.supported())
                .unwrap_or(Kernel::Portable)
        };
        match choice {
            KernelChoice::Auto => (widest(Kernel::Avx512), None),
            KernelChoice::Exactly(kernel) if kernel.supported() => (kernel, None),
            KernelChoice::Exactly(kernel) => {
                let fallback = widest(kernel);
                (fallback, Some(format!("this CPU cannot run {}; used {}", kernel.name(), fallback.name())))
            }
        }
    }
}

/// Up to [`GROUP_LANES`] complete-layout trees of one depth, walked together for one row. Lanes past `count` repeat
/// lane 0 (a valid walk whose result is ignored), so a kernel never masks.
#[derive(Debug, Clone)]
#[repr(C, align(64))]
pub(crate) struct VectorGroup {
    /// Absolute index of each tree's first split (its root).
    pub start: [u32; GROUP_LANES],
    /// `1 - start`, wrapping: the child of split `a` is `2a + step + right`.
    pub step: [u32; GROUP_LANES],
    /// Added (wrapping) to the split index a walk ends on, it gives the index of the leaf value.
    pub leaf_shift: [u32; GROUP_LANES],
    /// Tree index of each lane, for the tree-ordered sum.
    pub tree: [u32; GROUP_LANES],
    pub depth: u32,
    pub count: u32,
}

/// Walks every group for one row with AVX-512F and writes each real lane's leaf value to `leaf_values[tree]`.
///
/// `splits` are the forest's complete-layout splits (`{slot: u16, rank: u16}`, read as one little-endian `u32`),
/// `bins` the row's bins (`BIN_BYTES` bytes each) followed by at least [`GATHER_PADDING`] readable bytes, `leaves`
/// the complete-layout leaf values.
///
/// # Safety
/// The CPU has AVX-512F. Every group was built by `QuantisedForest::use_kernel` over these `splits` and `leaves`
/// (each lane's walk of `depth` steps stays inside its tree's `2^depth - 1` heap splits, every slot a split reads is
/// below the row's bins, and the split index a walk ends on plus `leaf_shift` indexes its tree's leaves), at most
/// `i32::MAX` splits, and every `tree` is below `leaf_values.len()`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn walk_avx512<T: Copy, const BIN_BYTES: i32>(
    groups: &[VectorGroup],
    splits: *const u32,
    bins: *const u8,
    leaves: &[T],
    leaf_values: &mut [T],
) {
    let splits = splits.cast::<i32>();
    let bins = bins.cast::<i32>();
    // Groups come sorted by depth; up to INTERLEAVE groups of one depth walk together, so that their gathers
    // overlap (one group's steps are a chain of dependent gathers).
    for same_depth in groups.chunk_by(|a, b| a.depth == b.depth) {
        let mut chunks = same_depth.chunks_exact(INTERLEAVE);
        for chunk in &mut chunks {
            // SAFETY: the function's contract.
            unsafe { walk_avx512_together::<T, BIN_BYTES, INTERLEAVE>(chunk, splits, bins, leaves, leaf_values) };
        }
        for group in chunks.remainder() {
            // SAFETY: the function's contract.
            unsafe {
                walk_avx512_together::<T, BIN_BYTES, 1>(std::slice::from_ref(group), splits, bins, leaves, leaf_values)
            };
        }
    }
}

/// Groups of one depth walked together by [`walk_avx512`].
const INTERLEAVE: usize = 4;

/// Walks `K` groups of one depth (`groups.len() == K`) together.
///
/// # Safety
/// As [`walk_avx512`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
#[allow(clippy::needless_range_loop, reason = "the K walks advance together; indexing keeps them in registers")]
unsafe fn walk_avx512_together<T: Copy, const BIN_BYTES: i32, const K: usize>(
    groups: &[VectorGroup],
    splits: *const i32,
    bins: *const i32,
    leaves: &[T],
    leaf_values: &mut [T],
) {
    use std::arch::x86_64::*;
    debug_assert!(groups.len() == K && groups.iter().all(|group| group.depth == groups[0].depth));
    let low16 = _mm512_set1_epi32(0xFFFF);
    let bin_mask = _mm512_set1_epi32(if BIN_BYTES == 1 { 0xFF } else { 0xFFFF });
    let one = _mm512_set1_epi32(1);
    // SAFETY: `VectorGroup` is 64-byte aligned and its arrays are 64 bytes, so these are aligned loads.
    let mut at: [__m512i; K] = std::array::from_fn(|k| unsafe { _mm512_load_si512(groups[k].start.as_ptr().cast()) });
    let step: [__m512i; K] = std::array::from_fn(|k| unsafe { _mm512_load_si512(groups[k].step.as_ptr().cast()) });
    for _ in 0..groups[0].depth {
        for k in 0..K {
            // SAFETY (both gathers): every lane stands on a split of its tree (the function's contract), whose index
            // is below i32::MAX; the slot it holds is below the row's bins, and the row's bins are followed by
            // GATHER_PADDING readable bytes, so the 4 bytes at `slot * BIN_BYTES` are readable.
            let split = unsafe { _mm512_i32gather_epi32::<4>(at[k], splits) };
            let slot = _mm512_and_si512(split, low16);
            let rank = _mm512_srli_epi32::<16>(split);
            let bin = _mm512_and_si512(unsafe { _mm512_i32gather_epi32::<BIN_BYTES>(slot, bins) }, bin_mask);
            let right = _mm512_cmpgt_epu32_mask(bin, rank);
            let next = _mm512_add_epi32(_mm512_add_epi32(at[k], at[k]), step[k]);
            at[k] = _mm512_mask_add_epi32(next, right, next, one);
        }
    }
    let mut ends = [0u32; GROUP_LANES];
    for k in 0..K {
        // SAFETY: `ends` is 64 bytes; an unaligned store needs no alignment.
        unsafe { _mm512_storeu_si512(ends.as_mut_ptr().cast(), at[k]) };
        // SAFETY: the function's contract (leaf indexes and tree indexes in range).
        unsafe { store_leaves(&groups[k], &ends, leaves, leaf_values) };
    }
}

/// Most bin slots a row may have for [`walk_lines_avx512`]: 64 `u16` bins fill two registers.
pub const TABLE_SLOTS: usize = 64;

/// Low bits of a line-kernel split word that hold its bin slot (below [`TABLE_SLOTS`]); the rank is above them.
pub const SLOT_BITS: u32 = TABLE_SLOTS.trailing_zeros();

/// Ranks a line-kernel split word holds: those below `2^(16 - SLOT_BITS)`.
pub const LINE_RANK_LIMIT: usize = 1 << (16 - SLOT_BITS);

/// Cuts a fence stands for in [`line_table_avx512`]: a register of `f32`.
pub const FENCE_STRIDE: usize = 16;

/// One used feature for [`line_table_avx512`]: its cuts `cuts[start..start + count]` (ascending, no NaN) and its
/// fences from `fence`: cut `FENCE_STRIDE * j + FENCE_STRIDE - 1` for every whole group `j` of `FENCE_STRIDE` cuts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FencedFeature {
    pub feature: u32,
    pub start: u32,
    pub count: u32,
    pub fence: u32,
}

/// The line kernel's table for one row, straight from its values: slot `2f` gets `b(x)` (0 for NaN), slot `2f + 1`
/// gets `b(x)` (`missing_right` for NaN), the constant slot `constant` gets `missing_right`, where
/// `b(x) = 1 + #{cuts <= x}`, the rule of `quantised.rs`, in the same precision. With `f32` values the count takes
/// two compares of 16 lanes: the fences (every 16th cut) give the group of 16 cuts where `x` falls, and that group
/// the rest; `f64` values (8 lanes) compare their fences 8 at a time, in groups of 16 cuts too.
///
/// # Safety
/// The CPU has what [`Kernel::Avx512`] needs (see [`Kernel::supported`]); `T` is `f32` or `f64`; every feature's
/// cuts and fences lie inside `cuts` and `fences`, its feature below `features.len()`, its slots and `constant`
/// below [`TABLE_SLOTS`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512cd,bmi1,bmi2,popcnt")]
pub(crate) unsafe fn line_table_avx512<T: Float>(
    features: &[T],
    used: &[FencedFeature],
    cuts: &[T],
    fences: &[T],
    missing_right: u16,
    constant: usize,
    table: &mut [u16; TABLE_SLOTS],
) {
    use std::arch::x86_64::*;
    debug_assert!(size_of::<T>() == 4 || size_of::<T>() == 8);
    table[constant] = missing_right;
    for entry in used {
        debug_assert!((entry.start + entry.count) as usize <= cuts.len());
        debug_assert!((entry.fence as usize + entry.count as usize / FENCE_STRIDE) <= fences.len());
        debug_assert!((entry.feature as usize) < features.len() && 2 * entry.feature as usize + 1 < TABLE_SLOTS);
        // SAFETY: the function's contract.
        let value = unsafe { *features.get_unchecked(entry.feature as usize) };
        let (left, right) = if value.is_nan() {
            (0, missing_right)
        } else {
            let count = entry.count as usize;
            // SAFETY: the reads below stay inside the feature's cuts and fences (masked loads read no lane past
            // them); `T` is f32 or f64 (the contract), so the casts read the values as they are.
            let at_most = unsafe {
                let cuts = cuts.as_ptr().add(entry.start as usize);
                let fences = fences.as_ptr().add(entry.fence as usize);
                if size_of::<T>() == 4 {
                    let x = _mm512_set1_ps(*(&value as *const T).cast::<f32>());
                    count_at_most_fenced::<T, 16>(cuts, fences, count, |from, left| {
                        let mask = ((1u32 << left.min(16)) - 1) as u16;
                        let v = _mm512_maskz_loadu_ps(mask, from.cast::<f32>());
                        _mm512_mask_cmp_ps_mask::<_CMP_LE_OQ>(mask, v, x).count_ones() as usize
                    })
                } else {
                    let x = _mm512_set1_pd(*(&value as *const T).cast::<f64>());
                    count_at_most_fenced::<T, 8>(cuts, fences, count, |from, left| {
                        let mask = ((1u32 << left.min(8)) - 1) as u8;
                        let v = _mm512_maskz_loadu_pd(mask, from.cast::<f64>());
                        _mm512_mask_cmp_pd_mask::<_CMP_LE_OQ>(mask, v, x).count_ones() as usize
                    })
                }
            };
            let bin = (at_most + 1) as u16;
            (bin, bin)
        };
        let slot = 2 * entry.feature as usize;
        table[slot] = left;
        table[slot + 1] = right;
    }
}

/// The number of a feature's `count` cuts (ascending, from `cuts`) that are `<= x`, where `count_le(from, left)`
/// counts those among the `min(left, WIDTH)` values from `from`: the fences (every [`FENCE_STRIDE`]-th cut, from
/// `fences`) pick the group of `FENCE_STRIDE` cuts where `x` falls, and that group gives the rest (cuts after it are
/// all above `x`).
///
/// # Safety
/// `count` cuts are readable from `cuts`, `count / FENCE_STRIDE` fences from `fences`; `count_le` reads no value
/// past `left`.
#[inline(always)]
unsafe fn count_at_most_fenced<T, const WIDTH: usize>(
    cuts: *const T,
    fences: *const T,
    count: usize,
    count_le: impl Fn(*const T, usize) -> usize,
) -> usize {
    let groups = count / FENCE_STRIDE;
    let mut group = 0;
    let mut done = 0;
    while done < groups {
        // SAFETY: `done < groups` fences are readable (the contract).
        group += count_le(unsafe { fences.add(done) }, groups - done);
        done += WIDTH;
    }
    let (first, end) = (group * FENCE_STRIDE, count.min(group * FENCE_STRIDE + FENCE_STRIDE));
    let mut at_most = first;
    // A constant number of steps (1 for f32, 2 for f64), unrolled.
    for step in 0..FENCE_STRIDE / WIDTH {
        let at = first + step * WIDTH;
        if at < end {
            // SAFETY: `at < end <= count` cuts are readable (the contract).
            at_most += count_le(unsafe { cuts.add(at) }, end - at);
        }
    }
    at_most
}

/// A complete-layout tree for [`walk_lines_avx512`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct LineTree {
    /// Index of the first split word of the tree's top block.
    pub root: u32,
    /// Where the tree's lower tiers count from: slot `s >= 16` of its tier layout is word `rest + s`.
    pub rest: u32,
    /// Index of the tree's first leaf value.
    pub leaves: u32,
    pub tree: u32,
    /// Levels walked: the tree's depth, rounded up to a multiple of [`TIER_DEPTH`] up to 8 (`walked_depth` in
    /// `quantised.rs`).
    pub depth: u32,
    /// Padding levels at the bottom: the leaf is the walk's path shifted right by `shift`.
    pub shift: u32,
}

/// For a block of `h` levels, exit `e` (below `2^h`) has the bits of the splits on the path to it (`PATH`) and of
/// those among them that go right (`RIGHT`): a block's direction mask `m` leads to exit `e` exactly when
/// `m & PATH[e] == RIGHT[e]`. Each is in the two 16-bit lanes `2e` and `2e + 1`, one for each tree of a pair. Lanes
/// past `2^h` never match (their `RIGHT` is not inside `PATH`).
const fn path_table(levels: u32) -> ([u16; 2 * GROUP_LANES], [u16; 2 * GROUP_LANES]) {
    let mut path = [0u16; 2 * GROUP_LANES];
    let mut right = [u16::MAX; 2 * GROUP_LANES];
    let mut exit = 0;
    while exit < (1 << levels) {
        let (mut on_path, mut goes_right, mut at) = (0u16, 0u16, 0u32);
        let mut level = 0;
        while level < levels {
            let bit = (exit >> (levels - 1 - level)) & 1;
            on_path |= 1 << at;
            goes_right |= (bit as u16) << at;
            at = 2 * at + 1 + bit;
            level += 1;
        }
        path[2 * exit as usize] = on_path;
        path[2 * exit as usize + 1] = on_path;
        right[2 * exit as usize] = goes_right;
        right[2 * exit as usize + 1] = goes_right;
        exit += 1;
    }
    (path, right)
}

type PathTable = ([u16; 2 * GROUP_LANES], [u16; 2 * GROUP_LANES]);

const PATH_TABLES: [PathTable; 5] = [path_table(0), path_table(1), path_table(2), path_table(3), path_table(4)];

/// Walks complete-layout trees for one row with AVX-512 and no gather: the row's bins (at most [`TABLE_SLOTS`],
/// widened to `u16`) stay in two registers, and a whole 4-level block of two trees at once is decided per compare.
/// A block is 16 split words `slot | rank << SLOT_BITS` (32 bytes, half a cache line); a pair of trees costs two
/// loads into one register, one two-register permute (`vpermt2w`, which reads only an index's low 6 bits: the
/// slots) for the 32 bins, one shift for the 32 ranks, one compare for the 32 directions, and a path match for the
/// two exits (the 32-bit direction mask broadcast to every 32-bit lane puts the first tree's mask in the even
/// 16-bit lanes and the second's in the odd ones: `vpandd`, `vpcmpeqw`, then `pext` of the even and of the odd
/// bits and `tzcnt`). A tree of depth 8 is two blocks. Trees are independent, so the CPU overlaps consecutive
/// pairs. With `WIDE` (a rank at or past [`LINE_RANK_LIMIT`]) a block is 16 slot words, then 16 rank words (64
/// bytes): a pair's slots are loaded into one register and its ranks into another, so one permute and one compare
/// decide both trees as with narrow words. `R` rows (tables, sinks) walk the same trees together.
///
/// `tables` hold the rows' bins widened to `u16` (`TABLE_SLOTS` of them, the unused ones anything). `words`
/// counts in 16-bit units; positions (`root`, `rest`) count in words of the format.
///
/// # Safety
/// The CPU has what [`Kernel::Avx512`] needs (see [`Kernel::supported`]). Every tree was placed by
/// `QuantisedForest::use_kernel` in these `words` (its top block at `root`, the top blocks of consecutive trees
/// consecutive, its lower tiers from `rest`, at least 16 readable words from each block's start) and `leaves`;
/// every word's slot is below [`TABLE_SLOTS`]; with [`LeafSink::Values`], every `tree` is below the values'
/// length. `run_ends` split `trees` into runs of one walked depth: ascending, the last one `trees.len()`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512cd,bmi1,bmi2,popcnt")]
pub(crate) unsafe fn walk_lines_avx512<T: Float, const R: usize, const WIDE: bool>(
    trees: &[LineTree],
    run_ends: &[u32],
    words: *const u16,
    tables: [&[u16; TABLE_SLOTS]; R],
    leaves: &[T],
    sinks: [LeafSink<'_, T>; R],
) {
    use std::arch::x86_64::*;
    let mut sinks = sinks;
    // SAFETY: each table is 128 bytes; unaligned loads.
    let rows: [(__m512i, __m512i); R] = std::array::from_fn(|row| unsafe {
        (_mm512_loadu_si512(tables[row].as_ptr().cast()), _mm512_loadu_si512(tables[row].as_ptr().add(32).cast()))
    });
    // SAFETY: the tables are 64-byte arrays; unaligned loads.
    let paths: [(__m512i, __m512i); 5] = std::array::from_fn(|levels| unsafe {
        (
            _mm512_loadu_si512(PATH_TABLES[levels].0.as_ptr().cast()),
            _mm512_loadu_si512(PATH_TABLES[levels].1.as_ptr().cast()),
        )
    });
    // Trees of one depth walk LINE_INTERLEAVE at a time (in pairs), block by block, so that the loads of their next
    // blocks issue together instead of each waiting for the previous pair's chain.
    // The runs were found once, when the trees were placed (finding them here cost 7 instructions a tree a row).
    let mut run_start = 0;
    for &run_end in run_ends {
        let same_depth = &trees[run_start..run_end as usize];
        run_start = run_end as usize;
        debug_assert!(same_depth.iter().all(|tree| tree.depth == same_depth[0].depth));
        let same_depth = if same_depth[0].depth == 2 * TIER_DEPTH && same_depth.len() >= 2 * LINE_INTERLEAVE {
            let whole = same_depth.len() - same_depth.len() % LINE_INTERLEAVE;
            // SAFETY: the function's contract.
            unsafe { walk_two_tiers::<T, R, WIDE>(&same_depth[..whole], words, rows, paths[4], leaves, &mut sinks) };
            &same_depth[whole..]
        } else {
            same_depth
        };
        // Each row's trees in order, so that a fused sum keeps the reference's order.
        for ((low, high), sink) in rows.into_iter().zip(&mut sinks) {
            let mut chunks = same_depth.chunks_exact(LINE_INTERLEAVE);
            for chunk in &mut chunks {
                // SAFETY: the function's contract.
                unsafe {
                    walk_lines_together::<T, { LINE_INTERLEAVE / 2 }, WIDE>(
                        chunk, words, low, high, &paths, leaves, sink,
                    )
                };
            }
            let mut pairs = chunks.remainder().chunks_exact(2);
            for pair in &mut pairs {
                // SAFETY: the function's contract.
                unsafe { walk_lines_together::<T, 1, WIDE>(pair, words, low, high, &paths, leaves, sink) };
            }
            if let [tree] = pairs.remainder() {
                // SAFETY: the function's contract.
                unsafe {
                    walk_lines_together::<T, 1, WIDE>(
                        std::slice::from_ref(tree),
                        words,
                        low,
                        high,
                        &paths,
                        leaves,
                        sink,
                    )
                };
            }
        }
    }
}

/// A pair's two blocks, loaded: narrow words in the first register (the first tree's in its low half); wide blocks'
/// slot words in the first register and their rank words in the second (the first tree's in the low halves).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct PairBlocks(std::arch::x86_64::__m512i, std::arch::x86_64::__m512i);

/// Loads the blocks that start at words `first` and `second` (narrow: 16-bit words `slot | rank << SLOT_BITS`;
/// `WIDE`: 16 slot words, then 16 rank words).
///
/// # Safety
/// 16 words from each are readable.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512cd,bmi1,bmi2,popcnt")]
#[inline]
unsafe fn load_pair<const WIDE: bool>(words: *const u16, first: usize, second: usize) -> PairBlocks {
    use std::arch::x86_64::*;
    // SAFETY: the caller's contract; unaligned loads.
    unsafe {
        if WIDE {
            // A wide block is its 16 slot words, then its 16 rank words: the pair's slots go in one register, its
            // ranks in the other.
            let half = |start: usize| _mm256_loadu_si256(words.add(start).cast());
            let pair = |a: __m256i, b: __m256i| _mm512_inserti64x4::<1>(_mm512_castsi256_si512(a), b);
            PairBlocks(
                pair(half(2 * first), half(2 * second)),
                pair(half(2 * first + BLOCK_WORDS), half(2 * second + BLOCK_WORDS)),
            )
        } else {
            let a = _mm256_loadu_si256(words.add(first).cast());
            let b = _mm256_loadu_si256(words.add(second).cast());
            PairBlocks(_mm512_inserti64x4::<1>(_mm512_castsi256_si512(a), b), _mm512_setzero_si512())
        }
    }
}

/// The directions of a pair's blocks: bit `j` for split `j` of the first tree's block, bit `16 + j` of the second's.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512cd,bmi1,bmi2,popcnt")]
#[inline]
fn pair_directions<const WIDE: bool>(
    blocks: PairBlocks,
    low: std::arch::x86_64::__m512i,
    high: std::arch::x86_64::__m512i,
) -> u32 {
    use std::arch::x86_64::*;
    if WIDE {
        // Slots in the first register, ranks in the second.
        let bin = _mm512_permutex2var_epi16(low, blocks.0, high);
        _mm512_cmpgt_epu16_mask(bin, blocks.1)
    } else {
        // The permute reads only each word's low 6 bits: the slot.
        let bin = _mm512_permutex2var_epi16(low, blocks.0, high);
        _mm512_cmpgt_epu16_mask(bin, _mm512_srli_epi16::<SLOT_BITS>(blocks.0))
    }
}

/// The exits of a pair's blocks from their `directions` (see [`pair_directions`]), for blocks of the levels whose
/// path table is `(on_path, goes_right)`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512cd,bmi1,bmi2,popcnt")]
#[inline]
fn pair_exits(
    directions: u32,
    (on_path, goes_right): (std::arch::x86_64::__m512i, std::arch::x86_64::__m512i),
) -> (u32, u32) {
    use std::arch::x86_64::*;
    // Broadcast to every 32-bit lane, the first tree's directions are in the even 16-bit lanes, the second's in
    // the odd ones. From a general register (`in_register`): left to itself, LLVM doubled the mask in a mask
    // register for a 64-bit broadcast, one instruction more a block.
    let mask = _mm512_set1_epi32(in_register(directions) as i32);
    let exits = _mm512_cmpeq_epi16_mask(_mm512_and_si512(mask, on_path), goes_right);
    // Exactly one lane of each tree matches: `pext` packs each tree's lanes, `tzcnt` finds its exit (3 instructions
    // fewer a block than masking and halving; `pext` is fast on every CPU with AVX-512).
    (_pext_u32(exits, EVEN_WORDS).trailing_zeros(), _pext_u32(exits, !EVEN_WORDS).trailing_zeros())
}

/// Walks trees of 8 levels (two tiers), `LINE_INTERLEAVE` at a time, software-pipelined: the top blocks of the
/// next trees are decided in the same stretch of code as the bottom blocks of the current ones, so the CPU always
/// has independent blocks in flight while a bottom block waits for the exit of its top block.
///
/// # Safety
/// As [`walk_lines_avx512`]; `trees.len()` is a non-zero multiple of `LINE_INTERLEAVE`, each tree of walked depth 8.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512cd,bmi1,bmi2,popcnt")]
#[allow(clippy::needless_range_loop, reason = "the walks advance together; indexing keeps them in registers")]
unsafe fn walk_two_tiers<T: Float, const R: usize, const WIDE: bool>(
    trees: &[LineTree],
    words: *const u16,
    rows: [(std::arch::x86_64::__m512i, std::arch::x86_64::__m512i); R],
    table: (std::arch::x86_64::__m512i, std::arch::x86_64::__m512i),
    leaves: &[T],
    sinks: &mut [LeafSink<'_, T>; R],
) {
    const PAIRS: usize = LINE_INTERLEAVE / 2;
    debug_assert!(!trees.is_empty() && trees.len().is_multiple_of(LINE_INTERLEAVE));
    debug_assert!(trees.iter().all(|tree| tree.depth == 2 * TIER_DEPTH));
    let tops = |chunk: &[LineTree]| -> [[[u32; 2]; PAIRS]; R] {
        let mut top = [[[0u32; 2]; PAIRS]; R];
        for k in 0..PAIRS {
            let (a, b) = (&chunk[2 * k], &chunk[2 * k + 1]);
            debug_assert!(b.root == a.root + BLOCK_WORDS as u32);
            // SAFETY: the top blocks of consecutive trees are consecutive (the contract), so a narrow pair's are
            // one 64-byte load.
            let blocks = unsafe {
                match WIDE {
                    true => load_pair::<true>(words, a.root as usize, b.root as usize),
                    false => PairBlocks(
                        std::arch::x86_64::_mm512_loadu_si512(words.add(a.root as usize).cast()),
                        std::arch::x86_64::_mm512_setzero_si512(),
                    ),
                }
            };
            for row in 0..R {
                let (first, second) = pair_exits(pair_directions::<WIDE>(blocks, rows[row].0, rows[row].1), table);
                top[row][k] = [in_register(first), in_register(second)];
            }
        }
        top
    };
    let mut chunks = trees.chunks_exact(LINE_INTERLEAVE).peekable();
    let mut top = tops(&trees[..LINE_INTERLEAVE]);
    while let Some(chunk) = chunks.next() {
        let mut path = [[[0u32; 2]; PAIRS]; R];
        for row in 0..R {
            let (low, high) = rows[row];
            let top = &top[row];
            for k in 0..PAIRS {
                // The second tier starts after the 16 slots of the top block; block `e` of it at 16 * e.
                let start =
                    |side: usize| chunk[2 * k + side].rest as usize + ((top[k][side] as usize + 1) << TIER_DEPTH);
                // SAFETY: the function's contract.
                let blocks = unsafe { load_pair::<WIDE>(words, start(0), start(1)) };
                let (first, second) = pair_exits(pair_directions::<WIDE>(blocks, low, high), table);
                path[row][k] =
                    [in_register((top[k][0] << TIER_DEPTH) + first), in_register((top[k][1] << TIER_DEPTH) + second)];
            }
        }
        if let Some(next) = chunks.peek() {
            top = tops(next);
        }
        for (row, sink) in sinks.iter_mut().enumerate() {
            for (index, tree) in chunk.iter().enumerate() {
                // SAFETY: the function's contract.
                unsafe { sink.take(tree, path[row][index / 2][index % 2], leaves) };
            }
        }
    }
}

/// `value`, kept in a general register: an empty `asm!` the optimiser cannot see through, so that it does not pack
/// the interleaved walks' scalar bookkeeping into vector lanes (which costs a lane insert and extract per block).
#[inline(always)]
fn in_register(mut value: u32) -> u32 {
    // SAFETY: the template is empty: it reads and writes nothing but the register it is given.
    unsafe { std::arch::asm!("/* {0:e} */", inout(reg) value, options(pure, nomem, nostack, preserves_flags)) };
    value
}

/// Where [`walk_lines_avx512`] puts the leaf values it reaches.
pub(crate) enum LeafSink<'a, T> {
    /// `values[tree]`, for a sum taken afterwards.
    Values(&'a mut [T]),
    /// Added to the running sum as they come: the trees must be all of the forest's trees, in order, so that the
    /// sum's order is the reference's. The add chain then overlaps the walks instead of following them.
    Sum(&'a mut T),
}

impl<T: Float> LeafSink<'_, T> {
    /// Takes the leaf value that `tree`'s walk reached by `path`.
    ///
    /// # Safety
    /// `path` is the path of a walk of `tree.depth` levels of `tree`, placed with its leaves in `leaves`; with
    /// [`LeafSink::Values`], `tree.tree` is below the values' length.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512cd,bmi1,bmi2,popcnt")]
    #[inline]
    unsafe fn take(&mut self, tree: &LineTree, path: u32, leaves: &[T]) {
        let leaf = (tree.leaves + (path >> tree.shift)) as usize;
        debug_assert!(leaf < leaves.len());
        // SAFETY: the path of a walk of `depth` levels, shifted by `shift`, is below 2^(depth - shift), the tree's
        // leaf count (the contract).
        let value = unsafe { *leaves.get_unchecked(leaf) };
        match self {
            // In tree order: the trees are the forest's trees in order when the sum is fused.
            LeafSink::Sum(sum) => **sum += value,
            LeafSink::Values(values) => {
                let at = tree.tree as usize;
                debug_assert!(at < values.len());
                // SAFETY: tree indexes are below the values' length (the contract).
                unsafe { *values.get_unchecked_mut(at) = value };
            }
        }
    }
}

/// The even 16-bit lanes of a 512-bit register (the first tree of each pair's exits).
const EVEN_WORDS: u32 = 0x5555_5555;

/// Trees of one depth walked together by [`walk_lines_avx512`] (an even number: they go in pairs).
const LINE_INTERLEAVE: usize = 8;
const _: () = assert!(LINE_INTERLEAVE.is_multiple_of(2));

/// Walks `K` pairs of trees of one depth (`trees.len() == 2 * K`, or one tree with `K == 1`, which then walks as
/// both trees of the pair) together, block by block.
///
/// # Safety
/// As [`walk_lines_avx512`]; `low` and `high` hold the row's table.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512cd,bmi1,bmi2,popcnt")]
#[inline]
#[allow(clippy::needless_range_loop, reason = "the K walks advance together; indexing keeps them in registers")]
unsafe fn walk_lines_together<T: Float, const K: usize, const WIDE: bool>(
    trees: &[LineTree],
    words: *const u16,
    low: std::arch::x86_64::__m512i,
    high: std::arch::x86_64::__m512i,
    paths: &[(std::arch::x86_64::__m512i, std::arch::x86_64::__m512i); 5],
    leaves: &[T],
    sink: &mut LeafSink<'_, T>,
) {
    debug_assert!(trees.len() == 2 * K || (K == 1 && trees.len() == 1));
    debug_assert!(trees.iter().all(|tree| tree.depth == trees[0].depth));
    // Tree `2k + side` of the pair `k`; a lone tree is both sides.
    let tree = |k: usize, side: usize| &trees[(2 * k + side).min(trees.len() - 1)];
    let mut path = [[0u32; 2]; K];
    let mut start: [[usize; 2]; K] = std::array::from_fn(|k| [tree(k, 0).root as usize, tree(k, 1).root as usize]);
    let (mut tier_start, mut blocks, mut remaining) = (0usize, 1usize, trees[0].depth);
    while remaining > 0 {
        let levels = remaining.min(TIER_DEPTH);
        for k in 0..K {
            // SAFETY: each block starts inside its tree's tiers and 16 words from it are readable (the contract).
            let blocks = unsafe { load_pair::<WIDE>(words, start[k][0], start[k][1]) };
            let (first, second) = pair_exits(pair_directions::<WIDE>(blocks, low, high), paths[levels as usize]);
            path[k][0] = in_register((path[k][0] << levels) + first);
            path[k][1] = in_register((path[k][1] << levels) + second);
        }
        remaining -= levels;
        if remaining > 0 {
            tier_start += blocks << levels;
            blocks <<= levels;
            let stride = remaining.min(TIER_DEPTH);
            for k in 0..K {
                for side in 0..2 {
                    start[k][side] = tree(k, side).rest as usize + tier_start + ((path[k][side] as usize) << stride);
                }
            }
        }
    }
    for (index, tree) in trees.iter().enumerate() {
        // SAFETY: the function's contract.
        unsafe { sink.take(tree, path[index / 2][index % 2], leaves) };
    }
}

/// [`walk_avx512`] with AVX2: each group is walked as two interleaved halves of 8 lanes.
///
/// # Safety
/// As [`walk_avx512`], with AVX2 in place of AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn walk_avx2<T: Copy, const BIN_BYTES: i32>(
    groups: &[VectorGroup],
    splits: *const u32,
    bins: *const u8,
    leaves: &[T],
    leaf_values: &mut [T],
) {
    use std::arch::x86_64::*;
    let low16 = _mm256_set1_epi32(0xFFFF);
    let bin_mask = _mm256_set1_epi32(if BIN_BYTES == 1 { 0xFF } else { 0xFFFF });
    let splits = splits.cast::<i32>();
    let bins = bins.cast::<i32>();
    let mut ends = [0u32; GROUP_LANES];
    for group in groups {
        let both = group.count as usize > GROUP_LANES / 2;
        // SAFETY: `VectorGroup` is 64-byte aligned, so both halves of each array are 32-byte aligned.
        let (mut low, mut high, step_low, step_high) = unsafe {
            (
                _mm256_load_si256(group.start.as_ptr().cast()),
                _mm256_load_si256(group.start.as_ptr().add(8).cast()),
                _mm256_load_si256(group.step.as_ptr().cast()),
                _mm256_load_si256(group.step.as_ptr().add(8).cast()),
            )
        };
        // Ranks and bins stay below 2^16, so the signed compare is the unsigned one; `cmpgt` gives -1 for "right".
        macro_rules! step {
            ($at:ident, $step:ident) => {{
                // SAFETY: as in `walk_avx512`.
                let split = unsafe { _mm256_i32gather_epi32::<4>(splits, $at) };
                let slot = _mm256_and_si256(split, low16);
                let rank = _mm256_srli_epi32::<16>(split);
                let bin = _mm256_and_si256(unsafe { _mm256_i32gather_epi32::<BIN_BYTES>(bins, slot) }, bin_mask);
                let right = _mm256_cmpgt_epi32(bin, rank);
                $at = _mm256_sub_epi32(_mm256_add_epi32(_mm256_add_epi32($at, $at), $step), right);
            }};
        }
        if both {
            for _ in 0..group.depth {
                step!(low, step_low);
                step!(high, step_high);
            }
        } else {
            for _ in 0..group.depth {
                step!(low, step_low);
            }
        }
        // SAFETY: `ends` is 64 bytes, two unaligned 32-byte stores.
        unsafe {
            _mm256_storeu_si256(ends.as_mut_ptr().cast(), low);
            _mm256_storeu_si256(ends.as_mut_ptr().add(8).cast(), high);
        }
        // SAFETY: the function's contract (leaf indexes and tree indexes in range).
        unsafe { store_leaves(group, &ends, leaves, leaf_values) };
    }
}

/// Writes the leaf values the group's real lanes reached.
///
/// # Safety
/// `ends[lane] + leaf_shift[lane]` (wrapping) indexes `leaves` and `tree[lane]` indexes `leaf_values` for every lane
/// below `count`.
#[inline(always)]
unsafe fn store_leaves<T: Copy>(group: &VectorGroup, ends: &[u32; GROUP_LANES], leaves: &[T], leaf_values: &mut [T]) {
    let lanes = ends.iter().zip(&group.leaf_shift).zip(&group.tree).take(group.count as usize);
    for ((end, shift), tree) in lanes {
        let leaf = end.wrapping_add(*shift) as usize;
        let tree = *tree as usize;
        debug_assert!(leaf < leaves.len() && tree < leaf_values.len());
        // SAFETY: the function's contract.
        unsafe { *leaf_values.get_unchecked_mut(tree) = *leaves.get_unchecked(leaf) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_resolution_never_picks_an_unsupported_kernel() {
        for kernel in Kernel::ALL {
            assert_eq!(Kernel::from_name(kernel.name()), Some(kernel));
            assert_eq!(KernelChoice::from_name(kernel.name()), Some(KernelChoice::Exactly(kernel)));
            let (resolved, note) = Kernel::resolve(KernelChoice::Exactly(kernel));
            assert!(resolved.supported() && resolved <= kernel);
            assert_eq!(note.is_some(), resolved != kernel);
        }
        assert_eq!(KernelChoice::from_name("auto"), Some(KernelChoice::Auto));
        assert_eq!(KernelChoice::from_name("sse9"), None);
        let (auto, note) = Kernel::resolve(KernelChoice::Auto);
        assert_eq!((Some(auto), note), (Kernel::available().last().copied(), None));
        assert!(Kernel::Portable.supported());
    }
}
