//! The pickle opcode table and everything derived from it.
//!
//! There is exactly one listing of opcodes, `for_each_opcode!` in
//! `opcodes_table.rs`, generated from CPython's `pickletools.opcodes` by
//! `scripts/gen_opcode_table.py`. The [`Opcode`] enum, the byte lookup, the
//! argument kinds the reader decodes, the stack effects the disassembler
//! emulates and the documentation all come from that one table, so they cannot
//! drift apart (the approach of wasmparser's `for_each_operator!` and of
//! pickletools' own `opcodes` list).

include!("opcodes_table.rs");

/// How an opcode's inline argument is encoded (pickletools' `ArgumentDescriptor`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArgKind {
    /// No inline argument.
    None,
    /// One unsigned byte.
    Uint1,
    /// Two-byte little-endian unsigned integer.
    Uint2,
    /// Four-byte little-endian signed integer.
    Int4,
    /// Four-byte little-endian unsigned integer.
    Uint4,
    /// Eight-byte little-endian unsigned integer.
    Uint8,
    /// One length byte, then a little-endian two's-complement integer.
    Long1,
    /// Four-byte signed length, then a little-endian two's-complement integer.
    Long4,
    /// Eight-byte big-endian IEEE-754 double.
    Float8,
    /// Newline-terminated decimal integer; `00`/`01` mean False/True.
    DecimalnlShort,
    /// Newline-terminated decimal integer, optionally with a trailing `L`.
    DecimalnlLong,
    /// Newline-terminated decimal float literal.
    Floatnl,
    /// Newline-terminated, quoted Python string literal with escapes.
    Stringnl,
    /// Newline-terminated string without escapes (PERSID).
    StringnlNoescape,
    /// Two newline-terminated strings without escapes (GLOBAL, INST).
    StringnlNoescapePair,
    /// One length byte, then bytes read as latin-1 text.
    String1,
    /// Four-byte signed length, then bytes read as latin-1 text.
    String4,
    /// One length byte, then raw bytes.
    Bytes1,
    /// Four-byte unsigned length, then raw bytes.
    Bytes4,
    /// Eight-byte unsigned length, then raw bytes.
    Bytes8,
    /// Eight-byte unsigned length, then raw bytes of a bytearray.
    Bytearray8,
    /// Newline-terminated raw-unicode-escape text.
    Unicodestringnl,
    /// One length byte, then UTF-8 text.
    Unicodestring1,
    /// Four-byte unsigned length, then UTF-8 text.
    Unicodestring4,
    /// Eight-byte unsigned length, then UTF-8 text.
    Unicodestring8,
}

/// A stack item type in an opcode's stack effect (pickletools' `StackObject`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StackItem {
    /// An int.
    Int,
    /// An int or a bool.
    IntOrBool,
    /// A bool.
    Bool,
    /// A float.
    Float,
    /// bytes or str, depending on the unpickler's encoding.
    BytesOrStr,
    /// bytes.
    Bytes,
    /// bytearray.
    ByteArray,
    /// str.
    Str,
    /// None.
    NoneValue,
    /// tuple.
    Tuple,
    /// list.
    List,
    /// dict.
    Dict,
    /// set.
    Set,
    /// frozenset.
    FrozenSet,
    /// An out-of-band buffer.
    Buffer,
    /// Any object.
    Any,
    /// The mark object pushed by MARK.
    Mark,
    /// Everything above the topmost mark.
    StackSlice,
}

/// Static facts about one opcode, one row of the table.
#[derive(Debug)]
pub struct OpcodeInfo {
    /// The opcode.
    pub opcode: Opcode,
    /// Its name as pickletools spells it.
    pub name: &'static str,
    /// Its byte in the stream.
    pub byte: u8,
    /// How its inline argument is encoded.
    pub arg: ArgKind,
    /// What it pops, bottom first.
    pub stack_before: &'static [StackItem],
    /// What it pushes, bottom first.
    pub stack_after: &'static [StackItem],
    /// The protocol that introduced it.
    pub proto: u8,
    /// pickletools' one-line description.
    pub doc: &'static str,
}

macro_rules! define_opcodes {
    ($( ($variant:ident, $name:literal, $byte:literal, $arg:ident, [$($before:ident),*], [$($after:ident),*], $proto:literal, $doc:literal) ),* $(,)?) => {
        /// A pickle opcode.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Opcode {
            $(
                #[doc = $doc]
                $variant = $byte,
            )*
        }

        /// Every opcode's row, in pickletools' order.
        pub static OPCODES: &[OpcodeInfo] = &[
            $(
                OpcodeInfo {
                    opcode: Opcode::$variant,
                    name: $name,
                    byte: $byte,
                    arg: ArgKind::$arg,
                    stack_before: &[$(StackItem::$before),*],
                    stack_after: &[$(StackItem::$after),*],
                    proto: $proto,
                    doc: $doc,
                },
            )*
        ];

        /// Row index in [`OPCODES`] for each byte (`NO_OPCODE` where none).
        static BY_BYTE: [u8; 256] = {
            let mut t = [NO_OPCODE; 256];
            let mut i = 0u8;
            $(
                t[$byte] = i;
                i += 1;
            )*
            let _ = i;
            t
        };

        /// For each byte, its opcode with the argument kind and protocol, in a
        /// form constant evaluation can read (tables derived at compile time,
        /// such as the reader's fast-path table, start from it).
        pub const BY_BYTE_CONST: [Option<(Opcode, ArgKind, u8)>; 256] = {
            let mut t: [Option<(Opcode, ArgKind, u8)>; 256] = [None; 256];
            $(
                t[$byte] = Some((Opcode::$variant, ArgKind::$arg, $proto));
            )*
            t
        };

        impl Opcode {
            /// The opcode for a stream byte, if any.
            #[inline]
            pub fn from_byte(b: u8) -> Option<Opcode> {
                match BY_BYTE[b as usize] {
                    NO_OPCODE => None,
                    i => Some(OPCODES[i as usize].opcode),
                }
            }

            /// This opcode's row of the table.
            #[inline]
            pub fn info(self) -> &'static OpcodeInfo {
                // Every variant's byte has a row: the table and the enum come
                // from the same macro invocation.
                &OPCODES[BY_BYTE[self as usize] as usize]
            }
        }
    };
}

const NO_OPCODE: u8 = u8::MAX;

for_each_opcode!(define_opcodes);

impl Opcode {
    /// The pickletools name, e.g. `"STACK_GLOBAL"`.
    pub fn name(self) -> &'static str {
        self.info().name
    }
    /// The stream byte.
    pub fn byte(self) -> u8 {
        self as u8
    }
    /// The argument encoding.
    pub fn arg(self) -> ArgKind {
        self.info().arg
    }
    /// The protocol that introduced the opcode.
    pub fn proto(self) -> u8 {
        self.info().proto
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn no_byte_or_name_repeats() {
        let mut bytes = HashSet::new();
        let mut names = HashSet::new();
        for row in OPCODES {
            assert!(bytes.insert(row.byte), "repeated byte 0x{:02x}", row.byte);
            assert!(names.insert(row.name), "repeated name {}", row.name);
        }
        assert_eq!(OPCODES.len(), 68, "pickle protocols 0-5 define 68 opcodes");
    }

    #[test]
    fn lookup_round_trips() {
        for row in OPCODES {
            let op = Opcode::from_byte(row.byte).expect("every table byte decodes");
            assert_eq!(op, row.opcode);
            assert_eq!(op.info().name, row.name);
            assert_eq!(op.byte(), row.byte);
        }
        let known: HashSet<u8> = OPCODES.iter().map(|r| r.byte).collect();
        for b in 0..=255u8 {
            assert_eq!(Opcode::from_byte(b).is_some(), known.contains(&b));
        }
    }

    #[test]
    fn mark_consumers_end_in_stackslice() {
        // The disassembler and the machine rely on this pickletools invariant.
        for row in OPCODES {
            if row.stack_before.contains(&StackItem::Mark) {
                assert_eq!(row.stack_before.last(), Some(&StackItem::StackSlice), "{}", row.name);
                assert!(!row.stack_after.contains(&StackItem::Mark), "{}", row.name);
            }
        }
    }
}
