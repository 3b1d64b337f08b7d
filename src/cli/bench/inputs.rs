//! The yardsticks under the job, timed on the job's own input files: reading them
//! (`cat`) and splitting them into rows and fields ([`pooltrack::floor`]); and the
//! small batch files of the lab batch job.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use pooltrack::floor::{self, Counts};

/// Runs of each yardstick per file; the best is kept, as the least the machine needs.
pub(super) const RUNS: usize = 5;
/// The read size of `cat` (coreutils reads 128 KiB at a time).
const CAT_BUFFER: usize = 128 << 10;

/// Reading the inputs end to end, as `cat FILE > /dev/null` does.
#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct Cat {
    pub(super) seconds: f64,
    pub(super) bytes: u64,
    pub(super) gb_per_second: f64,
    pub(super) runs: usize,
}

/// Splitting the inputs, already in memory, into rows and fields on all cores.
#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct Floor {
    pub(super) seconds: f64,
    pub(super) bytes: u64,
    pub(super) rows: u64,
    pub(super) fields: u64,
    pub(super) gb_per_second: f64,
    pub(super) threads: usize,
    pub(super) runs: usize,
}

/// The yardsticks of a list of files, and what the floor counted in each.
pub(super) struct Yardsticks {
    pub(super) cat: Cat,
    pub(super) floor: Floor,
    pub(super) per_file: Vec<Counts>,
}

fn gb_per_second(bytes: u64, seconds: f64) -> f64 {
    bytes as f64 / 1e9 / seconds.max(1e-9)
}

/// Times `cat` and the floor on each file, best of [`RUNS`] each, and adds them up.
pub(super) fn measure(files: &[PathBuf]) -> anyhow::Result<Yardsticks> {
    let mut cat_seconds = 0.0;
    let mut floor_seconds = 0.0;
    let mut per_file = Vec::new();
    let mut chunk = vec![0u8; CAT_BUFFER];
    let mut whole = Vec::new();
    for path in files {
        let shown = || path.display().to_string();
        cat_seconds += best(|| cat(path, &mut chunk)).with_context(shown)?;
        whole.clear();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut whole))
            .with_context(shown)?;
        let mut counts = Counts::default();
        floor_seconds += best(|| {
            counts = floor::split(&whole, b',');
            Ok(())
        })?;
        per_file.push(counts);
    }
    let bytes: u64 = per_file.iter().map(|c| c.bytes).sum();
    Ok(Yardsticks {
        cat: Cat {
            seconds: cat_seconds,
            bytes,
            gb_per_second: gb_per_second(bytes, cat_seconds),
            runs: RUNS,
        },
        floor: Floor {
            seconds: floor_seconds,
            bytes,
            rows: per_file.iter().map(|c| c.rows).sum(),
            fields: per_file.iter().map(|c| c.fields).sum(),
            gb_per_second: gb_per_second(bytes, floor_seconds),
            threads: rayon::current_num_threads(),
            runs: RUNS,
        },
        per_file,
    })
}

/// The least time of [`RUNS`] runs of `f`.
fn best(mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let mut least = f64::INFINITY;
    for _ in 0..RUNS {
        let start = Instant::now();
        f()?;
        least = least.min(start.elapsed().as_secs_f64());
    }
    Ok(least)
}

/// Reads `path` to its end through `buf`, keeping nothing.
fn cat(path: &Path, buf: &mut [u8]) -> anyhow::Result<()> {
    let mut file = std::fs::File::open(path)?;
    while file.read(buf)? > 0 {}
    Ok(())
}

/// A lab's next batch: 1,000 new pools of 10 new persons, and their 1,000 results
/// plus 9,000 results re-sent for tubes already in the store (new report times).
/// Returns the two files and a person of the batch, for `status --person`.
pub(super) fn small_batches(city: &Path, out: &Path) -> anyhow::Result<(PathBuf, PathBuf, String)> {
    let mut coll = String::from("tube,person,mode,capacity,collected_at,site\n");
    let mut res = String::from("tube,result,ct_orf1ab,ct_n,reported_at,lab\n");
    for i in 0..10_000u32 {
        let pool = i / 10;
        coll.push_str(&format!(
            "BENCH{pool:07},BENCHP{i:012},pool,10,2022-04-03 08:{:02}:00,S99999\n",
            pool % 60
        ));
    }
    for pool in 0..1_000u32 {
        res.push_str(&format!(
            "BENCH{pool:07},negative,,,2022-04-03 15:{:02}:00,L1\n",
            pool % 60
        ));
    }
    let results = std::io::BufReader::new(std::fs::File::open(city.join("results.csv"))?);
    for line in std::io::BufRead::lines(results).skip(1).take(9_000) {
        let line = line?;
        let tube = line.split(',').next().unwrap_or_default();
        res.push_str(&format!("{tube},negative,,,2022-04-03 16:00:00,L9\n"));
    }
    let (c, r) = (
        out.join("batch_collections.csv"),
        out.join("batch_results.csv"),
    );
    std::fs::write(&c, coll)?;
    std::fs::write(&r, res)?;
    Ok((c, r, "BENCHP000000000042".to_owned()))
}

/// Cuts the collections file `file` into `k` files `collections-I-of-K.csv` in `out`,
/// each with the header, of about equal size, every cut where the tube changes (so no
/// tube's consecutive rows are split); returns each file and its data rows. Fewer
/// files when the rows run out first.
pub(super) fn cut_at_tubes(file: &Path, out: &Path, k: u32) -> anyhow::Result<Vec<(PathBuf, u64)>> {
    use std::io::{BufRead, BufReader, BufWriter, Write};
    let size = std::fs::metadata(file)
        .with_context(|| file.display().to_string())?
        .len();
    let mut input = BufReader::with_capacity(1 << 20, std::fs::File::open(file)?);
    let mut header = Vec::new();
    input.read_until(b'\n', &mut header)?;
    let name = |i: u32| out.join(format!("collections-{i}-of-{k}.csv"));
    let create = |i: u32| -> anyhow::Result<BufWriter<std::fs::File>> {
        let path = name(i);
        let mut w = BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(&path).with_context(|| path.display().to_string())?,
        );
        w.write_all(&header)?;
        Ok(w)
    };
    let mut parts = vec![(name(1), 0u64)];
    let mut w = create(1)?;
    let (mut read, mut line, mut last_tube) = (header.len() as u64, Vec::new(), Vec::new());
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        read += line.len() as u64;
        let tube = line.split(|&b| b == b',').next().unwrap_or_default();
        let part = u32::try_from(parts.len()).unwrap_or(u32::MAX);
        if part < k && read > size / u64::from(k) * u64::from(part) && tube != last_tube.as_slice()
        {
            w.flush()?;
            w = create(part + 1)?;
            parts.push((name(part + 1), 0));
        }
        last_tube.clear();
        last_tube.extend_from_slice(tube);
        w.write_all(&line)?;
        if let Some(p) = parts.last_mut() {
            p.1 += 1;
        }
    }
    w.flush()?;
    Ok(parts)
}
