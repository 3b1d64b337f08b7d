//! The machine a bench ran on and the command that ran it, as a published report
//! states them.

use std::ffi::OsString;

/// CPU, cores and memory, from `/proc` (Linux); what cannot be read is "unknown".
#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct Machine {
    /// The first `model name` of `/proc/cpuinfo`.
    pub(super) cpu: String,
    /// Cores this process may use (`available_parallelism`).
    pub(super) cores: usize,
    /// `MemTotal` of `/proc/meminfo`, GiB.
    pub(super) memory_gib: Option<f64>,
}

impl Machine {
    pub(super) fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Machine {
            cpu: cpu_model(&cpuinfo).unwrap_or_else(|| "unknown".to_owned()),
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            memory_gib: mem_total_kib(&meminfo).map(|k| k as f64 / 1_048_576.0),
        }
    }
}

impl std::fmt::Display for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}, {} cores, ", self.cpu, self.cores)?;
        match self.memory_gib {
            Some(g) => write!(f, "{g:.1} GiB"),
            None => write!(f, "unknown memory"),
        }
    }
}

fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .filter(|m| !m.is_empty())
}

fn mem_total_kib(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|k| k.parse().ok())
}

/// The command line as it was typed, quoted for a POSIX shell where a word needs it,
/// so a reader can paste it to reproduce the run.
pub(super) fn command_line(args: impl IntoIterator<Item = OsString>) -> String {
    args.into_iter()
        .map(|a| shell_word(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_word(w: &str) -> String {
    let plain = !w.is_empty()
        && w.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./=:,+@%".contains(&b));
    if plain {
        w.to_owned()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_memory_from_proc_text() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(cpu_model(cpuinfo).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(cpu_model("processor\t: 0\n"), None);
        assert_eq!(cpu_model("model name\t:\n"), None);
        assert_eq!(
            mem_total_kib("MemTotal:       24641780 kB\nMemFree: 1 kB\n"),
            Some(24_641_780)
        );
        assert_eq!(mem_total_kib(""), None);
        let m = Machine {
            cpu: "unknown".into(),
            cores: 2,
            memory_gib: None,
        };
        assert_eq!(m.to_string(), "unknown, 2 cores, unknown memory");
    }

    #[test]
    fn the_command_is_quoted_only_where_a_shell_needs_it() {
        let argv = [
            "pooltrack",
            "bench",
            "--dir",
            "my runs/a",
            "--seed",
            "it's",
            "",
        ];
        assert_eq!(
            command_line(argv.iter().map(OsString::from)),
            r"pooltrack bench --dir 'my runs/a' --seed 'it'\''s' ''"
        );
    }
}
