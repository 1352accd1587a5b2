//! The soak: the testbed's story run for a long simulated time (a year) with a sample every
//! simulated month of what the run costs — the process's resident memory, the stores' sizes on
//! disk, the records ingested, the wall time — and the end-of-story invariants
//! ([`crate::scenario::invariants::check`]) checked at the end.
//!
//! What is measured, exactly: the testbed runs the cloud (with its embedded broker), every
//! agent and the partners in ONE process, so [`Sample::rss_kib`] is that process's `VmRSS`
//! (cloud + broker + all agents + partners); [`Sample::children_rss_kib`] adds any child
//! process (none in this mode; kept so a run with a child broker or agent shows it). The
//! stores are separate directories: [`Sample::cloud_store_bytes`] is the cloud's sled
//! directory, [`Sample::agent_store_bytes`] the first vehicle's agent store and
//! [`Sample::agents_store_bytes`] all agents' stores — each the sum of its files' sizes.
//!
//! Also here: where the CPU went, by thread ([`thread_cpu`], from `/proc/self/task`), the
//! samples as CSV ([`Sample::csv_header`], [`Sample::parse_csv`]) and the plot ([`svg`]).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::Error;
use crate::scenario::cast::DAY_MS;
use crate::scenario::{Options, Phases, Testbed, invariants};

/// One look at the run's cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Simulated days done.
    pub day: f64,
    /// Real seconds since the testbed started.
    pub wall_s: f64,
    /// Records the cloud applied so far.
    pub records: u64,
    /// The process's resident set (`VmRSS`), KiB: cloud + broker + every agent.
    pub rss_kib: u64,
    /// Its children's resident sets, KiB (0: none).
    pub children_rss_kib: u64,
    /// The cloud's sled directory, bytes.
    pub cloud_store_bytes: u64,
    /// The first vehicle's agent store, bytes.
    pub agent_store_bytes: u64,
    /// Every agent's store, bytes.
    pub agents_store_bytes: u64,
}

impl Sample {
    /// Takes one now.
    pub fn take(bed: &Testbed) -> Self {
        let day = bed.progress().done.as_secs_f64() / (DAY_MS as f64 / 1000.0);
        let agents: Vec<PathBuf> = bed
            .vehicles
            .iter()
            .map(|v| bed.agent_store_dir(&v.vin()))
            .collect();
        Self {
            day,
            wall_s: bed.elapsed().as_secs_f64(),
            records: bed
                .cloud
                .metrics()
                .records_applied
                .load(std::sync::atomic::Ordering::Relaxed),
            rss_kib: rss_kib(Path::new("/proc/self")).unwrap_or(0),
            children_rss_kib: children_rss_kib(),
            cloud_store_bytes: dir_bytes(&bed.cloud_store_dir()),
            agent_store_bytes: agents.first().map_or(0, |d| dir_bytes(d)),
            agents_store_bytes: agents.iter().map(|d| dir_bytes(d)).sum(),
        }
    }

    /// The CSV header.
    pub fn csv_header() -> &'static str {
        "day,wall_s,records,rss_kib,children_rss_kib,cloud_store_bytes,agent_store_bytes,agents_store_bytes"
    }

    /// One CSV line (no newline).
    pub fn csv(&self) -> String {
        format!(
            "{:.2},{:.1},{},{},{},{},{},{}",
            self.day,
            self.wall_s,
            self.records,
            self.rss_kib,
            self.children_rss_kib,
            self.cloud_store_bytes,
            self.agent_store_bytes,
            self.agents_store_bytes
        )
    }

    /// The samples of a CSV file's text (header first).
    ///
    /// # Errors
    /// A line that is not a sample, named by its number.
    pub fn parse_csv(text: &str) -> Result<Vec<Self>, Error> {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate().skip(1) {
            if line.trim().is_empty() {
                continue;
            }
            let bad = || Error::Scenario(format!("samples line {}: {line:?}", i + 1));
            let f: Vec<&str> = line.split(',').collect();
            if f.len() != 8 {
                return Err(bad());
            }
            let u = |k: usize| f[k].trim().parse::<u64>().map_err(|_| bad());
            let x = |k: usize| f[k].trim().parse::<f64>().map_err(|_| bad());
            out.push(Self {
                day: x(0)?,
                wall_s: x(1)?,
                records: u(2)?,
                rss_kib: u(3)?,
                children_rss_kib: u(4)?,
                cloud_store_bytes: u(5)?,
                agent_store_bytes: u(6)?,
                agents_store_bytes: u(7)?,
            });
        }
        Ok(out)
    }
}

/// `VmRSS` of `/proc/<pid>` (KiB).
pub fn rss_kib(proc_dir: &Path) -> Option<u64> {
    let status = std::fs::read_to_string(proc_dir.join("status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The summed `VmRSS` of this process's children (KiB).
pub fn children_rss_kib() -> u64 {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| {
            std::fs::read_to_string(e.path().join("stat"))
                .ok()
                .and_then(|s| {
                    // pid (comm) state ppid ...: the comm may hold spaces and parentheses.
                    let rest = &s[s.rfind(')')? + 1..];
                    rest.split_whitespace().nth(1).map(|p| p == me)
                })
                .unwrap_or(false)
        })
        .filter_map(|e| rss_kib(&e.path()))
        .sum()
}

/// The sum of the sizes of the files under `dir` (0 if it is not there).
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// CPU seconds (user + system) this process's threads used, grouped by thread name with its
/// digits and VIN taken off (`car-…`, `tokio-runtime-w`, `sled-io`, …), most first.
pub fn thread_cpu() -> Vec<(String, f64)> {
    // /proc reports CPU time in clock ticks of USER_HZ, 100 on Linux.
    const HZ: f64 = 100.0;
    let mut groups: BTreeMap<String, f64> = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    for t in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // After the comm: state(0) ppid(1) ... utime(11) stime(12).
        let ticks = |k: usize| fields.get(k).and_then(|v| v.parse::<f64>().ok());
        let (Some(u), Some(s)) = (ticks(11), ticks(12)) else {
            continue;
        };
        let group = if name.starts_with("car-") {
            "car-<vin> (agent rules, agent sled, simulated bus)".to_owned()
        } else {
            name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-' || c == '#')
                .to_owned()
        };
        *groups.entry(group).or_default() += (u + s) / HZ;
    }
    let mut out: Vec<(String, f64)> = groups.into_iter().collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

/// How to soak.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// The story's options (vehicles, days, seed; speedup 0 for a soak).
    pub story: Options,
    /// Simulated days between two samples (30: monthly).
    pub every_days: u32,
    /// Where the samples go as CSV, each line written as it is taken (none: kept only).
    pub csv: Option<PathBuf>,
}

/// What a soak found.
#[derive(Debug, Clone)]
pub struct SoakReport {
    /// The samples: one at the start, one every `every_days`, one at the end.
    pub samples: Vec<Sample>,
    /// The end-of-story invariants that failed (empty: all held).
    pub failures: Vec<String>,
    /// Wall time spent in each phase of the steps.
    pub phases: Phases,
    /// CPU seconds by thread group, at the end.
    pub cpu: Vec<(String, f64)>,
    /// Real time of the whole run.
    pub wall: Duration,
    /// What the testbed itself keeps in memory for the checks, which grows with the story and
    /// is in the process's RSS: (story events, webhook bodies the partners received).
    pub retained: (usize, usize),
}

impl SoakReport {
    /// A readable summary: the samples, the phases and the CPU.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "  day   wall s   records   RSS MiB  cloud store MiB  agent store KiB  all agents MiB\n",
        );
        const MIB: f64 = 1024.0 * 1024.0;
        for s in &self.samples {
            out.push_str(&format!(
                "{:>5.0} {:>8.1} {:>9} {:>9.1} {:>16.2} {:>16.1} {:>15.2}\n",
                s.day,
                s.wall_s,
                s.records,
                (s.rss_kib + s.children_rss_kib) as f64 / 1024.0,
                s.cloud_store_bytes as f64 / MIB,
                s.agent_store_bytes as f64 / 1024.0,
                s.agents_store_bytes as f64 / MIB,
            ));
        }
        let p = &self.phases;
        out.push_str(&format!(
            "phases (wall s): cars {:.1}, settle (MQTT + cloud ingest) {:.1}, cloud tick {:.1}, partners {:.1}; total {:.1}\n",
            p.cars.as_secs_f64(),
            p.settle.as_secs_f64(),
            p.tick.as_secs_f64(),
            p.partners.as_secs_f64(),
            self.wall.as_secs_f64()
        ));
        out.push_str(&format!(
            "kept by the testbed for the checks: {} story events, {} webhook bodies\n",
            self.retained.0, self.retained.1
        ));
        out.push_str("CPU s by thread:\n");
        for (name, s) in self.cpu.iter().take(12) {
            out.push_str(&format!("  {s:>9.1}  {name}\n"));
        }
        if self.failures.is_empty() {
            out.push_str("invariants: all hold\n");
        } else {
            out.push_str(&format!(
                "invariants: {} FAILED\n  {}\n",
                self.failures.len(),
                self.failures.join("\n  ")
            ));
        }
        out
    }
}

/// Runs the story with samples; checks the invariants at the end; stops the testbed.
/// Must be called inside a multi-threaded tokio runtime.
///
/// # Errors
/// The testbed failed to start, step or stop, or the CSV could not be written.
pub async fn run(options: SoakOptions) -> Result<SoakReport, Error> {
    let mut csv = match &options.csv {
        Some(path) => {
            let mut file = std::fs::File::create(path)
                .map_err(|e| Error::io("creating the samples file", path, e))?;
            writeln!(file, "{}", Sample::csv_header())
                .map_err(|e| Error::io("writing the samples file", path, e))?;
            Some((file, path.clone()))
        }
        None => None,
    };
    let mut record = |s: Sample| -> Result<Sample, Error> {
        if let Some((file, path)) = csv.as_mut() {
            writeln!(file, "{}", s.csv())
                .and_then(|()| file.flush())
                .map_err(|e| Error::io("writing the samples file", path.clone(), e))?;
        }
        Ok(s)
    };
    let every = Duration::from_millis(u64::from(options.every_days.max(1)) * DAY_MS);
    let mut bed = Testbed::start(options.story.clone()).await?;
    let mut samples = vec![record(Sample::take(&bed))?];
    let mut next = every;
    while !bed.finished() {
        bed.step().await?;
        if bed.progress().done >= next {
            samples.push(record(Sample::take(&bed))?);
            next += every;
        }
    }
    if samples
        .last()
        .is_some_and(|s| s.day * 86_400.0 < bed.total().as_secs_f64() - 1.0)
    {
        samples.push(record(Sample::take(&bed))?);
    }
    let failures = invariants::check(&bed).await;
    let cpu = thread_cpu();
    let phases = bed.phases;
    let wall = bed.elapsed();
    let bodies = bed
        .partners
        .ids()
        .iter()
        .map(|id| bed.partners.bodies(id).len())
        .sum();
    let retained = (bed.events.len(), bodies);
    bed.shutdown().await?;
    Ok(SoakReport {
        samples,
        failures,
        phases,
        cpu,
        wall,
        retained,
    })
}

/// The samples as an SVG: resident memory and store sizes against simulated months, two
/// panels side by side, hand-written polylines (no dependency).
pub fn svg(samples: &[Sample], title: &str) -> String {
    const W: f64 = 960.0;
    const H: f64 = 400.0;
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let months: Vec<f64> = samples.iter().map(|s| s.day / 30.0).collect();
    let rss: Vec<f64> = samples
        .iter()
        .map(|s| (s.rss_kib + s.children_rss_kib) as f64 / 1024.0)
        .collect();
    let cloud: Vec<f64> = samples.iter().map(|s| mib(s.cloud_store_bytes)).collect();
    let agent: Vec<f64> = samples.iter().map(|s| mib(s.agent_store_bytes)).collect();
    let agents: Vec<f64> = samples.iter().map(|s| mib(s.agents_store_bytes)).collect();
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n",
        W / 2.0,
        escape(title)
    );
    out.push_str(&panel(
        (60.0, 40.0, 240.0, 260.0),
        "process RSS, MiB (cloud + all agents)",
        &months,
        &[("VmRSS of the one process", "#c0392b", &rss)],
    ));
    out.push_str(&panel(
        (370.0, 40.0, 240.0, 260.0),
        "store on disk, MiB",
        &months,
        &[
            ("the cloud's sled", "#2c3e50", &cloud),
            ("one agent's sled", "#8e44ad", &agent),
        ],
    ));
    out.push_str(&panel(
        (680.0, 40.0, 240.0, 260.0),
        "all agents' stores, MiB",
        &months,
        &[("sum of every agent's sled", "#27ae60", &agents)],
    ));
    out.push_str("</svg>\n");
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A "nice" upper bound for an axis.
fn nice(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(max.log10().floor());
    for k in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if k * mag >= max {
            return k * mag;
        }
    }
    10.0 * mag
}

type Series<'a> = (&'a str, &'a str, &'a Vec<f64>);

fn panel(frame: (f64, f64, f64, f64), label: &str, xs: &[f64], series: &[Series<'_>]) -> String {
    let (x0, y0, w, h) = frame;
    // Whole months on the x axis, a label every `xstep`.
    let xmax = xs.iter().copied().fold(0.0, f64::max).ceil().max(1.0);
    let xstep = (xmax / 6.0).ceil();
    let ymax = nice(
        series
            .iter()
            .flat_map(|s| s.2.iter().copied())
            .fold(0.0, f64::max),
    );
    let px = |x: f64| x0 + x / xmax * w;
    let py = |y: f64| y0 + h - y / ymax * h;
    let mut out = format!(
        "<g>\n<text x=\"{x0}\" y=\"{}\">{}</text>\n\
         <rect x=\"{x0}\" y=\"{y0}\" width=\"{w}\" height=\"{h}\" fill=\"none\" stroke=\"#999\"/>\n",
        y0 - 6.0,
        escape(label)
    );
    for i in 0..=4 {
        let y = ymax * f64::from(i) / 4.0;
        out.push_str(&format!(
            "<line x1=\"{x0}\" y1=\"{py:.1}\" x2=\"{}\" y2=\"{py:.1}\" stroke=\"#eee\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            x0 + w,
            x0 - 4.0,
            py(y) + 4.0,
            trim(y),
            py = py(y),
        ));
    }
    let mut x = 0.0;
    while x <= xmax {
        out.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            px(x),
            y0 + h + 16.0,
            trim(x)
        ));
        x += xstep;
    }
    out.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">simulated month</text>\n",
        x0 + w / 2.0,
        y0 + h + 32.0
    ));
    for (k, (name, colour, ys)) in series.iter().enumerate() {
        let points: Vec<String> = xs
            .iter()
            .zip(ys.iter())
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        out.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\n",
            points.join(" ")
        ));
        // The legend under the axis, where no line runs.
        let ly = y0 + h + 50.0 + 16.0 * k as f64;
        out.push_str(&format!(
            "<line x1=\"{}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"{colour}\" stroke-width=\"2\"/>\
             <text x=\"{}\" y=\"{}\">{}</text>\n",
            x0 + 8.0,
            x0 + 28.0,
            x0 + 32.0,
            ly + 4.0,
            escape(name)
        ));
    }
    out.push_str("</g>\n");
    out
}

fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn samples_round_trip_through_csv() {
        let s = Sample {
            day: 30.0,
            wall_s: 12.5,
            records: 1234,
            rss_kib: 56_789,
            children_rss_kib: 0,
            cloud_store_bytes: 9_000_000,
            agent_store_bytes: 400_000,
            agents_store_bytes: 1_600_000,
        };
        let text = format!("{}\n{}\n", Sample::csv_header(), s.csv());
        assert_eq!(Sample::parse_csv(&text).unwrap(), vec![s]);
        let e = Sample::parse_csv("h\n1,2,x\n").unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn the_plot_has_a_line_per_series() {
        let s = |day: f64, m: u64| Sample {
            day,
            wall_s: day,
            records: m,
            rss_kib: 1000 * m,
            children_rss_kib: 0,
            cloud_store_bytes: 1 << 20,
            agent_store_bytes: m << 10,
            agents_store_bytes: m << 12,
        };
        let svg = svg(&[s(0.0, 1), s(30.0, 2), s(60.0, 3)], "a <test>");
        assert_eq!(svg.matches("<polyline").count(), 4);
        assert_eq!(svg.matches("<g>").count(), 3);
        assert!(svg.contains("a &lt;test&gt;"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
    }

    #[test]
    fn rss_is_read_from_proc() {
        let kib = rss_kib(Path::new("/proc/self")).unwrap();
        assert!(kib > 100, "{kib}");
        assert!(dir_bytes(Path::new("/nonexistent-dir")) == 0);
    }
}
