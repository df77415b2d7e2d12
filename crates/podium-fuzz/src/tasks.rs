//! Fuzz targets of `podium-tasks`.

use crate::Target;

pub const TARGETS: &[Target] = &[];
