//! The data set's file format: the Arrow schema of `tasks/` ([`schema`]), reading stored
//! files as sorted streams ([`reader`]), writing one file batch by batch with the settings
//! every file shares ([`writer`]), and `task_history/`'s schema, reader and writer
//! ([`history_file`]). Files only: where they go is [`super::store`]'s business.

pub mod history_file;
pub mod reader;
pub mod schema;
pub mod writer;
