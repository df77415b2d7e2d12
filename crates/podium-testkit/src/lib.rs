//! Test support for Podium's other crates (a dev-dependency, never shipped):
//! [`seed`] fills a store with a seeded, realistic board of any size, and
//! [`browser`] drives headless Chromium through chromedriver, [`models`]
//! finds the test models (a test fails, not passes, when they are missing), and
//! [`postgres`] runs throwaway PostgreSQL servers.

pub mod browser;
pub mod models;
pub mod postgres;
pub mod seed;
