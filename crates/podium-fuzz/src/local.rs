//! Fuzz targets of `podium-local`.

use crate::Target;

pub const TARGETS: &[Target] = &[];
