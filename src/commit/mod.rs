//! The one durable write path.

pub mod derive;
pub mod rewrite;
pub mod window;
