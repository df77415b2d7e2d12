//! The model catalogue (`models/catalog.toml`) and `podium pull`: fetching a GGUF
//! file into Podium's cache, checking it, and finding it again.
//!
//! *Architecture invariant:* a file appears at its final path in the cache only
//! once it is complete and its checksum (when known) is verified; downloads are
//! written to a temporary file in the same directory, synced, then renamed.

mod catalog;
mod error;
mod pull;

pub use catalog::{Access, Catalog, ModelEntry, PackageFile, Price, Source};
pub use error::PullError;
pub use pull::{PullProgress, PullSpec, Puller, default_cache_dir, pull, resolve};
