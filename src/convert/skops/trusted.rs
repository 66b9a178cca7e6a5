//! The types skops trusts by default, per node loader (`trusted.txt`,
//! generated from the pinned skops by `scripts/gen_skops_trusted.py`), and
//! the one question asked of them: would `skops.io.get_untrusted_types`
//! list this node's type? skops audits a file on its node types before
//! building anything; every type not trusted by its loader's default list
//! must be passed in `trusted=`.

use std::collections::HashSet;
use std::sync::OnceLock;

/// The generated list: `<group> <module.name>` lines.
const TRUSTED: &str = include_str!("trusted.txt");

fn table() -> &'static HashSet<(&'static str, &'static str, &'static str)> {
    static TABLE: OnceLock<HashSet<(&'static str, &'static str, &'static str)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        TRUSTED
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(' '))
            .filter_map(|(group, name)| name.rsplit_once('.').map(|(module, class)| (group, module, class)))
            .collect()
    })
}

fn listed(group: &str, module: &str, class: &str) -> bool {
    table().contains(&(group, module, class))
}

/// True when skops trusts a node of `loader` whose type is
/// `module.class` without the user listing it.
pub fn trusted_by_default(loader: &str, module: &str, class: &str) -> bool {
    match (loader, module) {
        ("JsonNode" | "SliceNode", _) => true,
        ("DictNode", "builtins") => class == "dict",
        ("DictNode", "collections") => class == "OrderedDict",
        ("ListNode", "builtins") => class == "list",
        ("SetNode", "builtins") => class == "set",
        ("TupleNode", "builtins") => class == "tuple",
        ("BytesNode", "builtins") => class == "bytes",
        ("BytearrayNode", "builtins") => class == "bytearray",
        ("TypeNode", _) => listed("type", module, class),
        ("NdArrayNode", _) => listed("ndarray", module, class),
        ("FunctionNode", _) => listed("function", module, class),
        ("ObjectNode", _) => listed("object", module, class),
        ("LossNode", _) => listed("loss", module, class),
        ("SparseMatrixNode", _) => listed("sparse", module, class),
        ("MaskedArrayNode", "numpy.ma") => class == "MaskedArray",
        ("RandomStateNode", "numpy.random.mtrand") => class == "RandomState",
        ("RandomGeneratorNode", "numpy.random._generator") => class == "Generator",
        // TreeNode and DTypeNode trust nothing by default.
        _ => false,
    }
}

/// [`trusted_by_default`] of a dotted path (`sklearn._loss._loss.CyHalfBinomialLoss`).
pub fn trusted_path(loader: &str, path: &str) -> bool {
    path.rsplit_once('.').is_some_and(|(module, class)| trusted_by_default(loader, module, class))
}

/// True when skops accepts `numpy.random.<name>` as a generator's bit
/// generator without the user listing it.
pub fn bit_generator_trusted(name: &str) -> bool {
    listed("bitgen", "numpy.random", name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_lists_as_skops_has_them() {
        assert!(trusted_path("ObjectNode", "sklearn.linear_model._logistic.LogisticRegression"));
        assert!(trusted_path("ObjectNode", "sklearn._loss.link.Interval"));
        assert!(!trusted_path("ObjectNode", "sklearn.neighbors._kd_tree.KDTree"));
        assert!(!trusted_path("TreeNode", "sklearn.tree._tree.Tree"));
        assert!(trusted_path("TypeNode", "numpy.float64"));
        assert!(trusted_path("NdArrayNode", "numpy.ndarray"));
        assert!(!trusted_path("DTypeNode", "numpy.dtype"));
        assert!(trusted_path("LossNode", "sklearn._loss._loss.CyHalfBinomialLoss"));
        assert!(bit_generator_trusted("PCG64"));
        assert!(!bit_generator_trusted("seed"));
    }
}
