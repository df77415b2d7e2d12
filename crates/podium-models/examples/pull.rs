//! Pulls one model the way `podium pull` will:
//! `cargo run -p podium-models --example pull -- SPEC [CACHE_DIR]`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let spec = args.next().ok_or("usage: pull SPEC [CACHE_DIR]")?;
    let cache_dir = match args.next() {
        Some(dir) => std::path::PathBuf::from(dir),
        None => podium_models::default_cache_dir()?,
    };
    let started = std::time::Instant::now();
    let path = podium_models::pull(&spec, &cache_dir)?;
    println!("{} ({:.1?})", path.display(), started.elapsed());
    Ok(())
}
