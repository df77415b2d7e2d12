//! Fuzz targets of `podium-backends`.

use crate::Target;

pub const TARGETS: &[Target] = &[];
