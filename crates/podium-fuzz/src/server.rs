//! Fuzz targets of `podium-server`.

use crate::Target;

pub const TARGETS: &[Target] = &[];
