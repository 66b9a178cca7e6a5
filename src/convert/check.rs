//! Semantic checks before writing: state that would load but is
//! inconsistent, which scikit-learn indexes without bounds checks or
//! computes wrong results from. skops itself does not check content (it
//! leaves `sklearn.tree._tree.Tree` untrusted for that reason), so a
//! converter that vouches for a file must.
//!
//! - `Tree` (decision trees, forests, gradient boosting): `nodes` has
//!   `node_count` items and `values` is `(node_count, n_outputs,
//!   max(n_classes))`; every split node's children lie after it and before
//!   `node_count` (so no cycle), a leaf has both children `-1`, a split's
//!   feature is in `[0, n_features)`; sample counts are not negative.
//! - HistGradientBoosting `TreePredictor`: the same for its packed nodes
//!   (`left`/`right`/`feature_idx` against the estimator's `n_features_in_`).
//! - Every estimator with `n_features_in_`: the per-feature arrays
//!   (`coef_`, `mean_`, `scale_`, `components_`, ...) have that many
//!   columns, `feature_names_in_` that many names, `classes_` has
//!   `n_classes_` items, `tree_` was grown on that many features.
//! - Counts (`class_count_`, `n_samples_seen_`, `n_support_`, ...) are not
//!   negative.
//!
//! Both targets run them: a `.skops` file vouches for the model, and a
//! `.safetensors` file's tensors are what a port of the model will index.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read};

use serde_json::{Map, Value as J};

use super::skops::npy::dtype_from_json;
pub use super::skops::Inconsistency;
use crate::extract::arena::RegionReader;
use crate::extract::dtype::Dtype;
use crate::limits::MAX_EXTRACT_DEPTH;

/// Items larger than this are not read (no dtype the checks read is).
const MAX_CHECKED_ITEM: usize = 4096;

/// At most this many inconsistencies are reported per array.
const MAX_PER_ARRAY: usize = 5;

/// Arrays whose last axis has one entry per input feature.
const PER_FEATURE_LAST: &[&str] =
    &["coef_", "components_", "cluster_centers_", "theta_", "feature_log_prob_", "means_"];
/// Arrays with one entry per input feature (1-d).
const PER_FEATURE_1D: &[&str] =
    &["feature_names_in_", "mean_", "scale_", "min_", "data_min_", "data_max_", "data_range_"];
/// Arrays (or ints) of counts, never negative.
const COUNTS: &[&str] = &["class_count_", "n_samples_seen_", "n_support_", "feature_count_", "counts_"];

/// Where the extraction put the arrays: one arena file
/// ([`crate::extract::arena::Arena`]), each array file name's `[start,
/// end)` region holding its data alone or its whole `.npy` file (the data
/// last either way).
#[derive(Clone, Copy)]
pub struct Arrays<'a> {
    /// The arena, open for reading.
    pub file: &'a File,
    /// Regions by array file name (`arrays/x.npy`).
    pub regions: &'a HashMap<String, (u64, u64)>,
}

/// Runs every check on the document value `root`, reading arrays from
/// `arrays`.
pub fn check(root: &J, arrays: Arrays<'_>) -> Vec<Inconsistency> {
    let mut c = Checker { arrays, found: Vec::new(), path: Vec::new(), n_features: Vec::new() };
    c.walk(root, 0);
    c.found
}

struct Checker<'a> {
    arrays: Arrays<'a>,
    found: Vec<Inconsistency>,
    path: Vec<String>,
    /// `n_features_in_` of the enclosing estimators.
    n_features: Vec<Option<u64>>,
}

/// A document ndarray: its file, dtype and shape.
struct Arr<'d> {
    file: &'d str,
    dtype: Dtype,
    shape: Vec<u64>,
}

fn arr(v: &J) -> Option<Arr<'_>> {
    if v.get("type")?.as_str()? != "ndarray" {
        return None;
    }
    let shape = v.get("shape")?.as_array()?.iter().map(J::as_u64).collect::<Option<Vec<_>>>()?;
    Some(Arr { file: v.get("file")?.as_str()?, dtype: dtype_from_json(v.get("dtype")?)?, shape })
}

/// An int, or a numpy integer scalar.
fn int_of(v: &J) -> Option<i64> {
    match v {
        J::Number(n) => n.as_i64(),
        J::Object(o) if o.get("type").and_then(J::as_str) == Some("scalar") => o.get("value")?.as_i64(),
        _ => None,
    }
}

impl Checker<'_> {
    fn here(&self, step: &str) -> String {
        let mut p = self.path.join(".");
        if !step.is_empty() {
            if !p.is_empty() {
                p.push('.');
            }
            p.push_str(step);
        }
        if p.is_empty() {
            "<root>".into()
        } else {
            p
        }
    }

    fn report(&mut self, step: &str, message: String) {
        let path = self.here(step);
        self.found.push(Inconsistency { path, message });
    }

    fn walk(&mut self, v: &J, depth: usize) {
        if depth > MAX_EXTRACT_DEPTH {
            return;
        }
        let o = match v {
            J::Array(items) => return self.walk_items(items.iter().map(|x| (None, x)), depth),
            J::Object(o) => o,
            _ => return,
        };
        let class = o.get("class").and_then(J::as_str).unwrap_or("");
        let mut pushed = false;
        if let Some(st) = o.get("state").and_then(|s| s.get("items")).and_then(J::as_object) {
            if class == "sklearn.tree._tree.Tree" {
                self.tree(o, st);
            } else if class.ends_with(".TreePredictor") {
                self.predictor(st);
            }
            if let Some(n) = st.get("n_features_in_").and_then(int_of) {
                self.estimator(st, n);
                self.n_features.push(u64::try_from(n).ok());
                pushed = true;
            }
            self.counts(st);
        }
        for (k, x) in o {
            match (k.as_str(), x) {
                ("items", J::Object(m)) => self.walk_items(m.iter().map(|(k, x)| (Some(k.clone()), x)), depth),
                ("items" | "pairs" | "listitems" | "setitems" | "dictitems", J::Array(a)) => {
                    self.walk_items(a.iter().map(|x| (None, x)), depth)
                }
                ("state", _) => self.walk(x, depth + 1),
                ("args", J::Array(a)) => {
                    self.path.push("__args__".into());
                    self.walk_items(a.iter().map(|x| (None, x)), depth);
                    self.path.pop();
                }
                _ => {}
            }
        }
        if pushed {
            self.n_features.pop();
        }
    }

    fn walk_items<'v>(&mut self, items: impl Iterator<Item = (Option<String>, &'v J)>, depth: usize) {
        for (i, (k, x)) in items.enumerate() {
            self.path.push(k.unwrap_or_else(|| i.to_string()));
            self.walk(x, depth + 1);
            self.path.pop();
        }
    }

    /// Shapes of an estimator's per-feature arrays against `n_features_in_`.
    fn estimator(&mut self, st: &Map<String, J>, n: i64) {
        if n < 0 {
            self.report("n_features_in_", format!("is negative ({n})"));
            return;
        }
        let n = n as u64;
        for (key, v) in st {
            let Some(a) = arr(v).or_else(|| object_array_shape(v)) else { continue };
            let (last, one_d) = (PER_FEATURE_LAST.contains(&key.as_str()), PER_FEATURE_1D.contains(&key.as_str()));
            if one_d && a.shape.len() == 1 && a.shape[0] != n {
                self.report(key, format!("has {} entries but n_features_in_ is {n}", a.shape[0]));
            }
            if last && a.shape.last().is_some_and(|&d| d != n) && !a.shape.is_empty() {
                self.report(key, format!("has shape {:?} but n_features_in_ is {n}", a.shape));
            }
        }
        if let (Some(classes), Some(k)) = (st.get("classes_").and_then(arr), st.get("n_classes_").and_then(int_of)) {
            if classes.shape.len() == 1 && classes.shape[0] as i64 != k {
                self.report("classes_", format!("has {} classes but n_classes_ is {k}", classes.shape[0]));
            }
        }
        if let Some(tree) =
            st.get("tree_").filter(|t| t.get("class").and_then(J::as_str) == Some("sklearn.tree._tree.Tree"))
        {
            let tf = tree.get("args").and_then(|a| a.get(0)).and_then(int_of);
            if tf.is_some_and(|f| f != n as i64) {
                self.report("tree_", format!("was grown on {} features but n_features_in_ is {n}", tf.unwrap_or(0)));
            }
        }
    }

    /// Counts that must not be negative.
    fn counts(&mut self, st: &Map<String, J>) {
        for key in COUNTS {
            let Some(v) = st.get(*key) else { continue };
            if let Some(i) = int_of(v) {
                if i < 0 {
                    self.report(key, format!("is a negative count ({i})"));
                }
                continue;
            }
            let Some(a) = arr(v) else { continue };
            let mut bad = None;
            let r = self.each_number(&a, |i, x| {
                if x < 0.0 && bad.is_none() {
                    bad = Some((i, x));
                }
            });
            if let Some((i, x)) = bad {
                self.report(key, format!("item {i} is a negative count ({x})"));
            } else if let Err(e) = r {
                self.report(key, format!("could not be read: {e}"));
            }
        }
    }
}

/// The shape of an object ndarray (items in the document).
fn object_array_shape(v: &J) -> Option<Arr<'_>> {
    if v.get("type")?.as_str()? != "ndarray" || v.get("items").is_none() {
        return None;
    }
    let shape = v.get("shape")?.as_array()?.iter().map(J::as_u64).collect::<Option<Vec<_>>>()?;
    Some(Arr { file: "", dtype: Dtype::Object, shape })
}

/// Byte offset and decoder of a field of a structured dtype.
#[derive(Clone, Copy)]
struct FieldAt {
    offset: usize,
    size: usize,
    kind: u8,
    big: bool,
}

fn field(dtype: &Dtype, name: &str) -> Option<FieldAt> {
    let Dtype::Struct { fields, .. } = dtype else { return None };
    let f = fields.iter().find(|f| f.name == name && f.shape.is_empty())?;
    plain_at(&f.dtype, f.offset as usize)
}

fn plain_at(dtype: &Dtype, offset: usize) -> Option<FieldAt> {
    let Dtype::Plain { descr, itemsize } = dtype else { return None };
    let b = descr.as_bytes();
    let kind = *b.get(1)?;
    matches!(kind, b'i' | b'u' | b'f' | b'b').then_some(())?;
    matches!(itemsize, 1 | 2 | 4 | 8).then_some(())?;
    Some(FieldAt { offset, size: *itemsize as usize, kind, big: b[0] == b'>' })
}

impl FieldAt {
    /// The value at this field of `item` as f64 (ints up to 2^53 exactly).
    fn get(&self, item: &[u8]) -> f64 {
        let mut raw = [0u8; 8];
        let Some(src) = item.get(self.offset..self.offset + self.size) else { return f64::NAN };
        raw[..self.size].copy_from_slice(src);
        if self.big {
            raw[..self.size].reverse();
        }
        let u = u64::from_le_bytes(raw);
        let bits = 8 * self.size as u32;
        match self.kind {
            b'f' if self.size == 8 => f64::from_bits(u),
            b'f' if self.size == 4 => f32::from_bits(u as u32) as f64,
            b'f' => f64::NAN,
            b'i' => (((u << (64 - bits)) as i64) >> (64 - bits)) as f64,
            _ => u as f64,
        }
    }
}

impl Checker<'_> {
    /// Calls `f(index, item bytes)` for every item of an extracted array.
    fn each_item(&self, a: &Arr<'_>, mut f: impl FnMut(u64, &[u8])) -> std::io::Result<()> {
        let arrays = self.arrays;
        let Some(&(start, end)) = arrays.regions.get(a.file) else {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("{} was not written", a.file)));
        };
        let size = a.dtype.itemsize() as usize;
        let Some(n) = a.shape.iter().try_fold(1u64, |x, &d| x.checked_mul(d)) else { return Ok(()) };
        if size > MAX_CHECKED_ITEM {
            return Ok(());
        }
        // The data is the region's last n * size bytes, whether a `.npy`
        // header comes before it (skops' arena) or not (safetensors').
        let data = n.checked_mul(size as u64).and_then(|len| end.checked_sub(len)).filter(|&at| at >= start);
        let Some(at) = data else {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("{} is shorter than its shape", a.file)));
        };
        let region = RegionReader::new(arrays.file, (at, end));
        let cap = usize::try_from(region.remaining()).unwrap_or(usize::MAX).clamp(1, 1 << 16);
        let mut r = BufReader::with_capacity(cap, region);
        let mut buf = vec![0u8; size.max(1)];
        for i in 0..n {
            r.read_exact(&mut buf[..size])?;
            f(i, &buf[..size]);
        }
        Ok(())
    }

    /// Calls `f(index, value)` for every item of a plain numeric array.
    fn each_number(&self, a: &Arr<'_>, mut f: impl FnMut(u64, f64)) -> std::io::Result<()> {
        let Some(at) = plain_at(&a.dtype, 0) else { return Ok(()) };
        self.each_item(a, |i, b| f(i, at.get(b)))
    }

    /// A `Tree`'s node array against its own sizes.
    fn tree(&mut self, o: &Map<String, J>, st: &Map<String, J>) {
        let args = o.get("args").and_then(J::as_array).map(Vec::as_slice).unwrap_or(&[]);
        let n_features = args.first().and_then(int_of);
        let n_outputs = args.get(2).and_then(int_of);
        let node_count = st.get("node_count").and_then(int_of);
        let (Some(nodes), Some(count)) = (st.get("nodes").and_then(arr), node_count) else { return };
        if nodes.shape.first().map(|&n| n as i64) != Some(count) {
            self.report("nodes", format!("has {:?} nodes but node_count is {count}", nodes.shape));
            return;
        }
        if let (Some(values), Some(outs)) = (st.get("values").and_then(arr), n_outputs) {
            let classes = args.get(1).and_then(arr).map(|a| self.max_of(&a)).unwrap_or(None);
            let want0 = [Some(count), Some(outs), classes.map(|c| c as i64)];
            for (axis, w) in want0.iter().enumerate() {
                let got = values.shape.get(axis).map(|&d| d as i64);
                if let (Some(w), Some(g)) = (w, got) {
                    if *w != g {
                        self.report("values", format!("axis {axis} has {g} entries, expected {w}"));
                    }
                }
            }
        }
        let fields = ["left_child", "right_child", "feature", "n_node_samples", "weighted_n_node_samples"];
        let Some(at) = fields.iter().map(|f| field(&nodes.dtype, f)).collect::<Option<Vec<_>>>() else { return };
        let mut bad = Vec::new();
        let r = self.each_item(&nodes, |i, b| {
            let (l, r, f, n, w) = (at[0].get(b), at[1].get(b), at[2].get(b), at[3].get(b), at[4].get(b));
            let msg = node_problem(i as f64, l, r, f, count as f64, n_features.map(|x| x as f64), true).or_else(|| {
                (n < 0.0 || w.is_nan() || w < 0.0).then(|| format!("has a negative sample count ({n}, {w})"))
            });
            if let Some(m) = msg {
                if bad.len() < MAX_PER_ARRAY {
                    bad.push(format!("node {i} {m}"));
                }
            }
        });
        self.tree_result("nodes", bad, r);
    }

    fn tree_result(&mut self, step: &str, bad: Vec<String>, r: std::io::Result<()>) {
        for m in bad {
            self.report(step, m);
        }
        if let Err(e) = r {
            self.report(step, format!("could not be read: {e}"));
        }
    }

    /// A HistGradientBoosting predictor's nodes.
    fn predictor(&mut self, st: &Map<String, J>) {
        let Some(nodes) = st.get("nodes").and_then(arr) else { return };
        let count = nodes.shape.first().copied().unwrap_or(0) as f64;
        let n_features = self.n_features.last().copied().flatten().map(|n| n as f64);
        let fields = ["left", "right", "feature_idx", "is_leaf", "count"];
        let Some(at) = fields.iter().map(|f| field(&nodes.dtype, f)).collect::<Option<Vec<_>>>() else { return };
        let mut bad = Vec::new();
        let r = self.each_item(&nodes, |i, b| {
            if at[3].get(b) != 0.0 {
                return;
            }
            let (l, r, f) = (at[0].get(b), at[1].get(b), at[2].get(b));
            if let Some(m) = node_problem(i as f64, l, r, f, count, n_features, false) {
                if bad.len() < MAX_PER_ARRAY {
                    bad.push(format!("node {i} {m}"));
                }
            }
        });
        self.tree_result("nodes", bad, r);
    }

    /// The largest value of a small integer array (a tree's `n_classes`).
    fn max_of(&self, a: &Arr<'_>) -> Option<u64> {
        let mut m: Option<f64> = None;
        self.each_number(a, |_, x| m = Some(m.map_or(x, |y: f64| y.max(x)))).ok()?;
        m.filter(|x| *x >= 0.0).map(|x| x as u64)
    }
}

/// What is wrong with node `i` (children `l`/`r`, feature `f`) of a tree
/// with `count` nodes, or `None`. `leaf_minus_one`: a `Tree` marks leaves
/// with children `-1` (a predictor marks them with `is_leaf`, checked by
/// the caller).
fn node_problem(
    i: f64,
    l: f64,
    r: f64,
    f: f64,
    count: f64,
    n_features: Option<f64>,
    leaf_minus_one: bool,
) -> Option<String> {
    if leaf_minus_one && (l == -1.0 || r == -1.0) {
        return (l != r).then(|| format!("has one child -1 and the other {}", if l == -1.0 { r } else { l }));
    }
    for (side, c) in [("left", l), ("right", r)] {
        if !(c > i && c < count) {
            return Some(format!("has {side} child {c}, outside ({i}, {count})"));
        }
    }
    match n_features {
        Some(n) if !(f >= 0.0 && f < n) => Some(format!("splits on feature {f}, outside [0, {n})")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_problems() {
        // A split node 0 of a 3-node tree on 4 features, and its leaves.
        assert_eq!(node_problem(0.0, 1.0, 2.0, 3.0, 3.0, Some(4.0), true), None);
        assert_eq!(node_problem(1.0, -1.0, -1.0, -2.0, 3.0, Some(4.0), true), None);
        let p = |l, r, f| node_problem(0.0, l, r, f, 3.0, Some(4.0), true).unwrap_or_default();
        assert!(p(99.0, 2.0, 0.0).contains("left child 99"));
        assert!(p(1.0, 0.0, 0.0).contains("right child 0"), "a child before its parent is a cycle");
        assert!(p(1.0, 2.0, 4.0).contains("feature 4"));
        assert!(p(1.0, 2.0, -1.0).contains("feature -1"));
        assert!(p(-1.0, 2.0, 0.0).contains("one child -1"));
        assert!(p(f64::NAN, 2.0, 0.0).contains("left child NaN"));
        // A predictor's leaves are marked by is_leaf: -1 is not special.
        assert!(node_problem(0.0, -1.0, -1.0, 0.0, 3.0, None, false).is_some());
    }

    #[test]
    fn fields_of_the_tree_dtype() {
        let d = dtype_from_json(&serde_json::json!([
            ["left_child", "<i8"],
            ["threshold", ">f8"],
            ["n", "<u4"],
            ["", "|V4"]
        ]))
        .expect("dtype");
        let mut item = Vec::new();
        item.extend_from_slice(&(-1i64).to_le_bytes());
        item.extend_from_slice(&2.5f64.to_be_bytes());
        item.extend_from_slice(&7u32.to_le_bytes());
        item.extend_from_slice(&[0xAA; 4]);
        assert_eq!(field(&d, "left_child").map(|f| f.get(&item)), Some(-1.0));
        assert_eq!(field(&d, "threshold").map(|f| f.get(&item)), Some(2.5));
        assert_eq!(field(&d, "n").map(|f| f.get(&item)), Some(7.0));
        assert!(field(&d, "missing").is_none());
        // A short item reads as NaN, never out of bounds.
        assert!(field(&d, "n").is_some_and(|f| f.get(&item[..10]).is_nan()));
    }
}
