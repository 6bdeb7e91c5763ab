//! Pure transforms of rows, free of I/O so that they are unit- and property-tested: the
//! merge of a leaf's observations with the stored rows of its range ([`merge`]), and every
//! version of each task derived from a day's history and its new `tasks` rows
//! ([`versions`]).

pub mod merge;
pub mod versions;
