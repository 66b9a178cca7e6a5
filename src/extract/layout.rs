//! Memory layouts: strided views gathered into C order, the transposes of
//! protocol-5 `axis_order` arrays, and byte swaps. These are the only places
//! extraction rearranges data in memory (under [`crate::limits::MAX_GATHER_BYTES`]);
//! every other array is copied byte for byte.
//!
//! Strides and offsets are in elements, as `torch` gives them (numpy's are
//! in bytes; `_frombuffer` data is C-ordered, so its strides follow from
//! the shape).

/// How data is rearranged on the way to the `.npy` file (in memory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reorder {
    /// `transpose(p)` of C-ordered data, written in C order.
    Permute(Vec<usize>),
    /// Every unit of this many bytes reversed (big- to little-endian).
    Swap(usize),
}

impl Reorder {
    /// `data`, the items of an array of shape `shape` (the shape after the
    /// transpose for [`Reorder::Permute`]) and `itemsize` bytes each,
    /// rearranged.
    pub(crate) fn apply(&self, mut data: Vec<u8>, shape: &[u64], itemsize: usize) -> Vec<u8> {
        match self {
            Reorder::Permute(p) => permute(&data, &shape_before(shape, p), itemsize, p),
            Reorder::Swap(unit) => {
                if *unit > 1 {
                    data.chunks_exact_mut(*unit).for_each(|c| c.reverse());
                }
                data
            }
        }
    }
}

/// Elements of a strided view, gathered in C order.
pub(super) fn gather(storage: &[u8], elsize: usize, offset: u64, size: &[u64], stride: &[u64]) -> Vec<u8> {
    let count: u64 = size.iter().product();
    let mut out = Vec::with_capacity((count as usize) * elsize);
    let mut idx = vec![0u64; size.len()];
    for _ in 0..count {
        let e = offset + idx.iter().zip(stride).map(|(i, s)| i * s).sum::<u64>();
        let at = e as usize * elsize;
        out.extend_from_slice(&storage[at..at + elsize]);
        for d in (0..size.len()).rev() {
            idx[d] += 1;
            if idx[d] < size[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    out
}

/// True when a view of this size and stride reads its elements in C order
/// one after the other (axes of length 1 may have any stride).
pub(super) fn is_c_contiguous(size: &[u64], stride: &[u64]) -> bool {
    let mut expect = 1u64;
    let mut ok = true;
    for (&d, &s) in size.iter().zip(stride).rev() {
        if d != 1 && s != expect {
            ok = false;
        }
        expect = expect.saturating_mul(d);
    }
    ok
}

/// The element index of a non-empty view's last element, `None` when it
/// overflows.
pub(super) fn last_element(offset: u64, size: &[u64], stride: &[u64]) -> Option<u64> {
    size.iter().zip(stride).try_fold(offset, |a, (&d, &s)| (d - 1).checked_mul(s).and_then(|x| a.checked_add(x)))
}

/// The shape before `transpose(p)`: `before[p[i]] = after[i]`.
fn shape_before(after: &[u64], p: &[usize]) -> Vec<u64> {
    let mut before = vec![0u64; after.len()];
    for (i, &x) in p.iter().enumerate() {
        before[x] = after[i];
    }
    before
}

/// `src` (C order of `before`) transposed by `p`, in C order.
fn permute(src: &[u8], before: &[u64], elsize: usize, p: &[usize]) -> Vec<u8> {
    // Strides of `before` in elements, then the view's strides.
    let mut strides = vec![0u64; before.len()];
    let mut acc = 1u64;
    for d in (0..before.len()).rev() {
        strides[d] = acc;
        acc *= before[d];
    }
    let size: Vec<u64> = p.iter().map(|&x| before[x]).collect();
    let stride: Vec<u64> = p.iter().map(|&x| strides[x]).collect();
    gather(src, elsize, 0, &size, &stride)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i16s(v: &[i16]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn a_transposed_view_gathers_its_rows() {
        // torch: t = w.T for w = arange(6).reshape(2, 3): size (3, 2), stride (1, 3).
        let storage = i16s(&[0, 1, 2, 3, 4, 5]);
        assert_eq!(gather(&storage, 2, 0, &[3, 2], &[1, 3]), i16s(&[0, 3, 1, 4, 2, 5]));
        // A view at offset 2 with stride 2: elements 2 and 4.
        assert_eq!(gather(&storage, 2, 2, &[2], &[2]), i16s(&[2, 4]));
        // Stride 0 repeats an element; an empty view reads nothing.
        assert_eq!(gather(&storage, 2, 5, &[3], &[0]), i16s(&[5, 5, 5]));
        assert_eq!(gather(&storage, 2, 0, &[0, 3], &[3, 1]), Vec::<u8>::new());
    }

    #[test]
    fn axis_order_permutes_c_data_as_numpy_transposes() {
        // np.arange(24).reshape(2, 3, 4).transpose(1, 2, 0) has shape (3, 4, 2);
        // element [i, j, k] is arange[k, i, j] = 12k + 4i + j.
        let data: Vec<i16> = (0..24).collect();
        let out = Reorder::Permute(vec![1, 2, 0]).apply(i16s(&data), &[3, 4, 2], 2);
        let mut want = Vec::new();
        for i in 0..3 {
            for j in 0..4 {
                for k in 0..2 {
                    want.push(12 * k + 4 * i + j);
                }
            }
        }
        assert_eq!(out, i16s(&want));
    }

    #[test]
    fn a_swap_reverses_each_unit() {
        let big = vec![0, 0, 0, 1, 0, 0, 0, 2];
        assert_eq!(Reorder::Swap(4).apply(big.clone(), &[2], 4), vec![1, 0, 0, 0, 2, 0, 0, 0]);
        // Complex numbers swap each half, not the whole item.
        assert_eq!(Reorder::Swap(2).apply(vec![1, 2, 3, 4], &[1], 4), vec![2, 1, 4, 3]);
        assert_eq!(Reorder::Swap(1).apply(big.clone(), &[8], 1), big);
    }

    #[test]
    fn contiguity_ignores_axes_of_length_one() {
        assert!(is_c_contiguous(&[2, 3], &[3, 1]));
        assert!(!is_c_contiguous(&[3, 2], &[1, 3]));
        assert!(is_c_contiguous(&[1, 3], &[99, 1]));
        assert!(!is_c_contiguous(&[3], &[2]));
        assert!(is_c_contiguous(&[], &[]));
    }

    #[test]
    fn the_last_element_is_offset_plus_each_axis_end() {
        assert_eq!(last_element(2, &[3], &[1]), Some(4));
        assert_eq!(last_element(0, &[3, 2], &[1, 3]), Some(5));
        assert_eq!(last_element(u64::MAX, &[2], &[1]), None);
        assert_eq!(last_element(0, &[3], &[u64::MAX]), None);
    }
}
