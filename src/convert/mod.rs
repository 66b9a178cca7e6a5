//! `pkinspect convert`: a model file written in another, safe format,
//! statically (nothing is imported or called). [`skops`] writes `.skops`.

pub mod skops;
