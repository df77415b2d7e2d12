//! Test support for Podium's other crates (a dev-dependency, never shipped):
//! [`seed`] fills a store with a seeded, realistic board of any size, and
//! [`browser`] drives headless Chromium through chromedriver.

pub mod browser;
pub mod seed;
