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

fn table() -> &'static HashSet<(&'static str, &'static str)> {
    static TABLE: OnceLock<HashSet<(&'static str, &'static str)>> = OnceLock::new();
    TABLE.get_or_init(|| TRUSTED.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split_once(' ')).collect())
}

fn listed(group: &str, name: &str) -> bool {
    table().contains(&(group, name))
}

/// True when skops trusts a node of `loader` whose type is `name`
/// (`module.class`) without the user listing it.
pub fn trusted_by_default(loader: &str, name: &str) -> bool {
    match loader {
        "JsonNode" | "SliceNode" => true,
        "DictNode" => matches!(name, "builtins.dict" | "collections.OrderedDict"),
        "ListNode" => name == "builtins.list",
        "SetNode" => name == "builtins.set",
        "TupleNode" => name == "builtins.tuple",
        "BytesNode" => name == "builtins.bytes",
        "BytearrayNode" => name == "builtins.bytearray",
        "TypeNode" => listed("type", name),
        "NdArrayNode" => listed("ndarray", name),
        "FunctionNode" => listed("function", name),
        "ObjectNode" => listed("object", name),
        "LossNode" => listed("loss", name),
        "SparseMatrixNode" => listed("sparse", name),
        "MaskedArrayNode" => name == "numpy.ma.MaskedArray",
        "RandomStateNode" => name == "numpy.random.mtrand.RandomState",
        "RandomGeneratorNode" => name == "numpy.random._generator.Generator",
        // TreeNode and DTypeNode trust nothing by default.
        _ => false,
    }
}

/// True when skops accepts `numpy.random.<name>` as a generator's bit
/// generator without the user listing it.
pub fn bit_generator_trusted(name: &str) -> bool {
    listed("bitgen", &format!("numpy.random.{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_lists_as_skops_has_them() {
        assert!(trusted_by_default("ObjectNode", "sklearn.linear_model._logistic.LogisticRegression"));
        assert!(trusted_by_default("ObjectNode", "sklearn._loss.link.Interval"));
        assert!(!trusted_by_default("ObjectNode", "sklearn.neighbors._kd_tree.KDTree"));
        assert!(!trusted_by_default("TreeNode", "sklearn.tree._tree.Tree"));
        assert!(trusted_by_default("TypeNode", "numpy.float64"));
        assert!(trusted_by_default("NdArrayNode", "numpy.ndarray"));
        assert!(!trusted_by_default("DTypeNode", "numpy.dtype"));
        assert!(trusted_by_default("LossNode", "sklearn._loss._loss.CyHalfBinomialLoss"));
        assert!(bit_generator_trusted("PCG64"));
        assert!(!bit_generator_trusted("seed"));
    }
}
