//! Opening the files the offline commands read and write (`-` is standard output).

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};

pub fn output(path: &Path) -> Result<Box<dyn Write>> {
    if path == Path::new("-") {
        return Ok(Box::new(std::io::stdout().lock()));
    }
    Ok(Box::new(BufWriter::new(File::create(path).with_context(|| format!("creating {}", path.display()))?)))
}

pub fn input(path: &Path) -> Result<BufReader<File>> {
    Ok(BufReader::new(File::open(path).with_context(|| format!("opening {}", path.display()))?))
}
